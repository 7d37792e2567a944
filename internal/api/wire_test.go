package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// peersBackend serves fixed peers.
type peersBackend struct {
	storeBackend
	peers []bgp.PeerStatus
}

func (b *peersBackend) Peers(context.Context) ([]bgp.PeerStatus, error) { return b.peers, nil }

// legacyPeer and legacyNotification are the API's own peer types before
// the API served the speaker's bgp.PeerStatus, frozen here: every field
// they wrote must come out byte for byte the same.
type legacyPeer struct {
	Address          string              `json:"address"`
	Description      string              `json:"description,omitempty"`
	ASN              uint32              `json:"asn"`
	State            string              `json:"state"`
	Established      bool                `json:"established"`
	EstablishedSince time.Time           `json:"established_since,omitzero"`
	Uptime           string              `json:"uptime,omitempty"`
	Families         []string            `json:"families,omitempty"`
	Sent             map[string]int      `json:"sent"`
	Received         map[string]int      `json:"received,omitempty"`
	LastError        string              `json:"last_error,omitempty"`
	LastNotification *legacyNotification `json:"last_notification,omitempty"`
	Feed             bool                `json:"feed,omitempty"`
}

type legacyNotification struct {
	Direction string    `json:"direction"`
	Code      uint8     `json:"code"`
	Subcode   uint8     `json:"subcode"`
	Text      string    `json:"text"`
	At        time.Time `json:"at"`
}

// TestPeersJSON: GET /api/v1/peers writes what it wrote before for every
// field it had, plus the UPDATEs sent; the client reads it back whole.
func TestPeersJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	peers := []bgp.PeerStatus{
		{Address: "192.0.2.21", Description: "edge", ASN: 64512, State: "established", Established: true, EstablishedSince: at,
			Uptime: bgp.Uptime(26*time.Hour + 3*time.Second), Families: []string{"ipv4-unicast", "ipv4-flowspec"},
			Sent: map[string]int{"ipv4-unicast": 3, "ipv4-flowspec": 2}, Received: map[string]int{"ipv4-unicast": 0}, UpdatesSent: 9},
		{Address: "2001:db8::1", ASN: 64513, State: "active", Sent: map[string]int{}, LastError: "connection refused",
			LastNotification: &bgp.Notification{Direction: bgp.NotificationReceived, Code: 2, Subcode: 6, Text: "OPEN message error: unacceptable hold time", At: at}},
		{Address: "192.0.2.40", ASN: 64520, State: "established", Established: true, Feed: true, Sent: map[string]int{}, Received: map[string]int{"ipv4-unicast": 5}},
	}
	legacy := []legacyPeer{
		{Address: "192.0.2.21", Description: "edge", ASN: 64512, State: "established", Established: true, EstablishedSince: at,
			Uptime: "26h0m3s", Families: []string{"ipv4-unicast", "ipv4-flowspec"},
			Sent: map[string]int{"ipv4-unicast": 3, "ipv4-flowspec": 2}, Received: map[string]int{"ipv4-unicast": 0}},
		{Address: "2001:db8::1", ASN: 64513, State: "active", Sent: map[string]int{}, LastError: "connection refused",
			LastNotification: &legacyNotification{Direction: "received", Code: 2, Subcode: 6, Text: "OPEN message error: unacceptable hold time", At: at}},
		{Address: "192.0.2.40", ASN: 64520, State: "established", Established: true, Feed: true, Sent: map[string]int{}, Received: map[string]int{"ipv4-unicast": 5}},
	}
	c := serve(t, &peersBackend{peers: peers})
	resp, err := http.Get(c.Base + "/api/v1/peers")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/peers: %d %s (%v)", resp.StatusCode, body, err)
	}
	var got struct{ Peers []json.RawMessage }
	if err := json.Unmarshal(body, &got); err != nil || len(got.Peers) != len(legacy) {
		t.Fatalf("answer %s (%v)", body, err)
	}
	for i, l := range legacy {
		old, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, got.Peers[i]); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(string(old), "}") + `,"updates_sent":` + map[int]string{0: "9", 1: "0", 2: "0"}[i] + "}"
		if compact.String() != want {
			t.Errorf("peer %d:\n%s\nwant\n%s", i, compact.String(), want)
		}
	}

	back, err := c.Peers(context.Background())
	if err != nil || len(back) != 3 || back[0].Uptime != peers[0].Uptime || back[0].UpdatesSent != 9 || !back[2].Feed ||
		back[1].LastNotification == nil || back[1].LastNotification.Subcode != 6 {
		t.Errorf("client read %+v (%v)", back, err)
	}
}

// TestRunJSON: GET /api/v1/runs/{id} is the run's record as the store
// keeps it (what the speaker changed under "bgp", in all and per family)
// and its change with the API's links. The whole answer is pinned: the
// store's records and the API's JSON share their field names, so a change
// to either shows here.
func TestRunJSON(t *testing.T) {
	s, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r, err := s.BeginRun("schedule", at)
	if err != nil {
		t.Fatal(err)
	}
	ch := policy.Change{Targets: []policy.TargetChange{{Target: "tencent", Before: 1, After: 2, AddedASNs: []uint32{64500},
		Added: []asn.Prefix{{Prefix: netip.MustParsePrefix("20.0.0.0/24"), Origins: []uint32{64500},
			Evidence: []asn.Evidence{{Source: "irr:TEST", Detail: "route 20.0.0.0/24", Seen: at}}}}}}}
	r.Outcome, r.End, r.SnapshotTime, r.Diff, r.Targets = store.Applied, at.Add(time.Second), at, store.Summarize(ch), []store.TargetCount{{Target: "tencent", IPv4: 2, ASNs: 1}}
	r.Sources = []store.SourceStatus{{Source: "irr:TEST", OK: true}}
	r.Outputs = []store.Output{{Vendor: "junos", File: "asfence-junos.conf", Changed: true}}
	r.BGP = &bgp.Counts{Added: 2, Withdrawn: 1, Unchanged: 4, ByFamily: map[string]bgp.FamilyCounts{
		"ipv4-unicast": {Added: 2, Withdrawn: 1, Unchanged: 4}}}
	if err := s.PutRun(r, &store.Detail{Change: ch, OutputDiffs: []store.OutputDiff{{File: "asfence-junos.conf", Diff: "+a\n"}}}); err != nil {
		t.Fatal(err)
	}
	c := serve(t, &storeBackend{Store: s})
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/runs/%d", c.Base, r.ID))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET run: %d %s (%v)", resp.StatusCode, body, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		t.Fatal(err)
	}
	want := `{"format":2,"run":{"id":1,"trigger":"schedule","start":"2026-12-01T10:00:00Z","end":"2026-12-01T10:00:01Z","outcome":"applied",` +
		`"snapshot_time":"2026-12-01T10:00:00Z","sources":[{"source":"irr:TEST","ok":true}],"carried_over":{"asns":0,"prefixes":0},` +
		`"targets":[{"target":"tencent","ipv4":2,"ipv6":0,"asns":1}],` +
		`"diff":{"added":1,"removed":0,"added_asns":1,"removed_asns":0,"targets":[{"target":"tencent","before":1,"after":2,"added":1,"removed":0,"added_asns":1,"removed_asns":0}]},` +
		`"outputs":[{"vendor":"junos","file":"asfence-junos.conf","changed":true}],` +
		`"bgp":{"added":2,"by_family":{"ipv4-unicast":{"added":2,"withdrawn":1,"unchanged":4}},"unchanged":4,"withdrawn":1}},` +
		`"change":{"targets":[{"target":"tencent","before":1,"after":2,"added":1,"removed":0,"added_asns":[64500],"removed_asns":[],` +
		`"added_href":"/api/v1/runs/1/prefixes?change=added\u0026target=tencent","removed_href":"/api/v1/runs/1/prefixes?change=removed\u0026target=tencent"}],` +
		`"diffs":[{"file":"asfence-junos.conf","lines":1,"bytes":3,"href":"/api/v1/runs/1/diffs/asfence-junos.conf"}]}}`
	if compact.String() != want {
		t.Errorf("GET /api/v1/runs/1:\n%s\nwant\n%s", compact.String(), want)
	}
	sum, err := c.RunSummary(context.Background(), r.ID)
	if err != nil || sum.Run.BGP == nil || sum.Run.BGP.ByFamily["ipv4-unicast"].Withdrawn != 1 {
		t.Errorf("client read %+v (%v)", sum, err)
	}
}
