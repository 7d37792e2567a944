package metrics

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/asfence/asfence/bgp"
)

// TestPeers: the speaker's own peer status, read at scrape time: the
// session, what was sent and received per family, and the UPDATEs sent.
func TestPeers(t *testing.T) {
	peers := []bgp.PeerStatus{
		{Address: "192.0.2.1", Description: "edge", State: "established", Established: true,
			Sent: map[string]int{"ipv4-unicast": 4, "ipv4-flowspec": 8}, Received: map[string]int{"ipv4-unicast": 2}, UpdatesSent: 12},
		{Address: "192.0.2.2", State: "active", Sent: map[string]int{}},
	}
	m := New("test", func(context.Context) ([]bgp.PeerStatus, error) { return peers, nil })
	want := `
# HELP asfence_bgp_peer_established 1 if the BGP session is established.
# TYPE asfence_bgp_peer_established gauge
asfence_bgp_peer_established{description="",peer="192.0.2.2",state="active"} 0
asfence_bgp_peer_established{description="edge",peer="192.0.2.1",state="established"} 1
# HELP asfence_bgp_peer_prefixes_received Routes the peer sent (the speaker uses none of them), per family.
# TYPE asfence_bgp_peer_prefixes_received gauge
asfence_bgp_peer_prefixes_received{family="ipv4-unicast",peer="192.0.2.1"} 2
# HELP asfence_bgp_peer_prefixes_sent Routes (RTBH prefixes or FlowSpec rules) sent to the peer, per family.
# TYPE asfence_bgp_peer_prefixes_sent gauge
asfence_bgp_peer_prefixes_sent{family="ipv4-flowspec",peer="192.0.2.1"} 8
asfence_bgp_peer_prefixes_sent{family="ipv4-unicast",peer="192.0.2.1"} 4
# HELP asfence_bgp_peer_updates_sent_total UPDATE messages sent to the peer on its current session.
# TYPE asfence_bgp_peer_updates_sent_total counter
asfence_bgp_peer_updates_sent_total{peer="192.0.2.1"} 12
asfence_bgp_peer_updates_sent_total{peer="192.0.2.2"} 0
# HELP asfence_bgp_peers_scrape_error 1 if the speaker could not be asked for its peers.
# TYPE asfence_bgp_peers_scrape_error gauge
asfence_bgp_peers_scrape_error 0
`
	compare(t, m, "asfence_bgp_peer", want)

	failing := New("test", func(context.Context) ([]bgp.PeerStatus, error) { return nil, errors.New("speaker stopped") })
	compare(t, failing, "asfence_bgp_peer", `
# HELP asfence_bgp_peers_scrape_error 1 if the speaker could not be asked for its peers.
# TYPE asfence_bgp_peers_scrape_error gauge
asfence_bgp_peers_scrape_error 1
`)
}

// TestBGPApplied: each apply adds its per-family counts.
func TestBGPApplied(t *testing.T) {
	m := New("test", nil)
	m.BGPApplied(bgp.Counts{Added: 3, Withdrawn: 1, ByFamily: map[string]bgp.FamilyCounts{
		"ipv4-unicast": {Added: 2, Withdrawn: 1}, "ipv6-unicast": {Added: 1, Replaced: 1}}})
	m.BGPApplied(bgp.Counts{Added: 1, ByFamily: map[string]bgp.FamilyCounts{"ipv4-unicast": {Added: 1}}})
	want := `
# HELP asfence_bgp_routes_changed_total Routes (RTBH prefixes or FlowSpec rules) the speaker's applies added, withdrew or replaced, per family.
# TYPE asfence_bgp_routes_changed_total counter
asfence_bgp_routes_changed_total{change="added",family="ipv4-unicast"} 3
asfence_bgp_routes_changed_total{change="added",family="ipv6-unicast"} 1
asfence_bgp_routes_changed_total{change="replaced",family="ipv4-unicast"} 0
asfence_bgp_routes_changed_total{change="replaced",family="ipv6-unicast"} 1
asfence_bgp_routes_changed_total{change="withdrawn",family="ipv4-unicast"} 1
asfence_bgp_routes_changed_total{change="withdrawn",family="ipv6-unicast"} 0
`
	compare(t, m, "asfence_bgp_routes_changed_total", want)
}

// compare scrapes m as Prometheus does and compares the lines about
// metrics named with prefix (their HELP and TYPE too) with want, in the
// exposition's order (sorted by name, then labels).
func compare(t *testing.T, m *Metrics, prefix, want string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var got []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(l, "# HELP "), "# TYPE ")
		if strings.HasPrefix(name, prefix) {
			got = append(got, l)
		}
	}
	if g, w := strings.Join(got, "\n"), strings.TrimSpace(want); g != w {
		t.Errorf("metrics\n%s\nwant\n%s", g, w)
	}
}
