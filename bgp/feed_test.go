package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
)

// feedLog collects what a FeedHandler gets.
type feedLog struct {
	mu     sync.Mutex
	routes map[netip.Prefix]FeedUpdate // the last update per prefix
	downs  []netip.Addr
}

func (f *feedLog) Routes(us []FeedUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range us {
		f.routes[u.Prefix] = u
	}
}

func (f *feedLog) Down(a netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downs = append(f.downs, a)
}

func (f *feedLog) get(p string) (FeedUpdate, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.routes[netip.MustParsePrefix(p)]
	return u, ok
}

// feedBIRDConfig: static routes exported with made-up AS paths, as a
// route reflector passes on its clients' routes (iBGP: BIRD prepends
// nothing of its own).
const feedBIRDConfig = `
protocol static feedroutes4 {
  ipv4;
  route 30.0.1.0/24 blackhole;
  route 30.0.2.0/24 blackhole;
  route 30.0.3.0/24 blackhole;
}
protocol static feedroutes6 {
  ipv6;
  route 2a0c:1::/32 blackhole;
}
filter feed_out {
  if net = 30.0.1.0/24 then { bgp_path.prepend(396986); bgp_path.prepend(174); }
  if net = 30.0.2.0/24 then { bgp_path.prepend(174); bgp_path.prepend(396986); }
  if net = 2a0c:1::/32 then { bgp_path.prepend(45090); bgp_path.prepend(6939); }
  if net.type = NET_IP4 then bgp_next_hop = 192.0.2.99; else bgp_next_hop = 2001:db8::99;
  accept;
}
`

// TestFeedNeighbor: BIRD sends its table to a feed neighbor. The handler
// gets each route with its AS path and origin (the last AS of the path),
// withdrawals, and the session's end; the speaker announces nothing to the
// feed (BIRD holds no route from it) and never passes its routes on (an
// ordinary neighbor gets exactly the RTBH and FlowSpec set).
func TestFeedNeighbor(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local, r, n := iBGPReceiver(t)
	b := lab.StartBIRD(t, lab.Config{ASN: 65001, Extra: feedBIRDConfig, Sessions: []lab.Session{{
		Addr: local, ASN: 65001, Passive: true, Export: "filter feed_out"}}})
	feed := NeighborConfig{Address: b.Addr().String(), Port: b.Port(), ASN: 65001, LocalAddress: local.String(),
		ConnectRetry: 1, Multihop: true, Feed: true, Families: []string{FamilyIPv4, FamilyIPv6}}
	got := &feedLog{routes: map[netip.Prefix]FeedUpdate{}}
	o := baseOptions(local, n, feed)
	o.Feed = got
	s := startSpeaker(t, o, intent(twoTargets()...))
	established(t, s)

	want := map[string]struct {
		origin uint32
		path   []uint32
	}{
		"30.0.1.0/24": {396986, []uint32{174, 396986}},
		"30.0.2.0/24": {174, []uint32{396986, 174}},
		"30.0.3.0/24": {0, nil}, // the feed's own route: no origin
		"2a0c:1::/32": {45090, []uint32{6939, 45090}},
	}
	err := lab.Eventually(ctx, 30*time.Second, func(context.Context) error {
		for p, w := range want {
			u, ok := got.get(p)
			if !ok {
				return fmt.Errorf("%s not seen", p)
			}
			if u.Withdraw || u.Origin != w.origin || !slices.Equal(u.Path, w.path) || u.Neighbor != b.Addr() || u.PeerAS != 65001 || u.At.IsZero() {
				return fmt.Errorf("%s: %+v, want origin %d path %v from %s", p, u, w.origin, w.path, b.Addr())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The ordinary neighbor gets the set (15 paths, as in
	// TestAnnounceRTBHAndFlowSpec) and none of the feed's routes.
	r.waitCount(t, 15)
	for k := range r.paths(t) {
		if slices.Contains([]string{"ipv4-unicast 30.0.1.0/24", "ipv4-unicast 30.0.2.0/24", "ipv4-unicast 30.0.3.0/24", "ipv6-unicast 2a0c:1::/32"}, k) {
			t.Errorf("a feed route was passed on: %s", k)
		}
	}
	// The feed gets nothing.
	for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast} {
		if c, err := b.Count(ctx, f); err != nil || c != 0 {
			t.Errorf("the feed BIRD holds %d %s routes from asfence (%v)", c, f, err)
		}
	}
	ps := established(t, s)
	if ps[1].Received["ipv4-unicast"] != 3 || ps[1].Received["ipv6-unicast"] != 1 || ps[1].Sent["ipv4-unicast"] != 0 {
		t.Errorf("feed status: received %v, sent %v", ps[1].Received, ps[1].Sent)
	}
	if ps[0].Feed || !ps[1].Feed {
		t.Errorf("feed flags: %s %v, %s %v; want only the feed neighbor's set", ps[0].Address, ps[0].Feed, ps[1].Address, ps[1].Feed)
	}

	// A withdrawal, then the end of the session.
	if _, err := b.Cmd(ctx, "disable", "feedroutes6"); err != nil {
		t.Fatal(err)
	}
	err = lab.Eventually(ctx, 30*time.Second, func(context.Context) error {
		if u, _ := got.get("2a0c:1::/32"); !u.Withdraw {
			return fmt.Errorf("no withdrawal: %+v", u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cmd(ctx, "disable", "peer0"); err != nil {
		t.Fatal(err)
	}
	err = lab.Eventually(ctx, 30*time.Second, func(context.Context) error {
		got.mu.Lock()
		defer got.mu.Unlock()
		if !slices.Equal(got.downs, []netip.Addr{b.Addr()}) {
			return fmt.Errorf("downs %v", got.downs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFeedNeighborConfig: a feed neighbor negotiates the unicast families
// of its address families, gets no announce kind by default, and takes a
// full table.
func TestFeedNeighborConfig(t *testing.T) {
	c := &Config{ASN: 65001}
	n := NeighborConfig{Address: "192.0.2.7", ASN: 65001, Feed: true, Families: []string{FamilyIPv4, FamilyIPv6}}
	if k := n.AnnounceKinds(); len(k) != 0 {
		t.Errorf("announce kinds %v", k)
	}
	p := peerConfig(c, n)
	if len(p.AfiSafis) != 2 || p.AfiSafis[0].PrefixLimits.MaxPrefixes != DefaultFeedMaxPrefixes {
		t.Errorf("afi-safis %v", p.AfiSafis)
	}
	if l := computeLimits(&Config{Neighbors: []NeighborConfig{n}}, nil); l["192.0.2.7"] == nil || len(l["192.0.2.7"]) != 0 {
		t.Errorf("limits %v: the feed must get nothing", l)
	}
	n.Announce = []string{AnnounceFlowSpec}
	p = peerConfig(c, n)
	if len(p.AfiSafis) != 4 {
		t.Errorf("feed with flowspec: %d families", len(p.AfiSafis))
	}
	if _, limited := computeLimits(&Config{Neighbors: []NeighborConfig{n}}, nil)["192.0.2.7"]; limited {
		t.Error("a feed with announce: is not limited")
	}
	if needs(&Config{ASN: 65001, Neighbors: []NeighborConfig{{Address: "192.0.2.7", ASN: 65001, Feed: true}}})[rfV4] {
		t.Error("a feed alone needs no RTBH paths")
	}
}
