package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/integration/lab"
)

// twoTargets: 20.0.3.0/24 is in both, so its path carries both tags.
func twoTargets() []tgt {
	return []tgt{
		{"bytedance", 1, []string{"20.0.1.0/24", "20.0.2.0/24", "20.0.3.0/24", "2a00:1::/32"}},
		{"tencent", 2, []string{"20.0.3.0/24", "43.0.0.0/16"}},
	}
}

func baseOptions(local netip.Addr, ns ...NeighborConfig) Options {
	return Options{Config: Config{ASN: 65001, RouterID: local.String(), Neighbors: ns}}
}

func TestAnnounceRTBHAndFlowSpec(t *testing.T) {
	t.Parallel()
	local := lab.Loopback(t)
	r := newReceiver(t, 65001, 65001, local)
	n := r.neighbor(65001, local)
	n.Announce = []string{AnnounceBlackhole, AnnounceFlowSpec}
	n.Families = []string{FamilyIPv4, FamilyIPv6}
	s := startSpeaker(t, baseOptions(local, n), intent(twoTargets()...))
	established(t, s)
	// RTBH: 5 distinct prefixes. FlowSpec: bytedance's v4 cover is
	// 20.0.1.0/24 + 20.0.2.0/23, tencent's 20.0.3.0/24 + 43.0.0.0/16, v6
	// 2a00:1::/32: 5 prefixes, a destination and a source rule each.
	r.waitCount(t, 15)
	ps := r.paths(t)
	rtbh := map[string][]string{
		"ipv4-unicast 20.0.1.0/24": {"65001:666:1"},
		"ipv4-unicast 20.0.2.0/24": {"65001:666:1"},
		"ipv4-unicast 20.0.3.0/24": {"65001:666:1", "65001:666:2"},
		"ipv4-unicast 43.0.0.0/16": {"65001:666:2"},
		"ipv6-unicast 2a00:1::/32": {"65001:666:1"},
	}
	for k, large := range rtbh {
		g, ok := ps[k]
		if !ok {
			t.Errorf("%s not received", k)
			continue
		}
		nh := DefaultNextHopV4
		if strings.HasPrefix(k, "ipv6") {
			nh = DefaultNextHopV6
		}
		if g.nextHop() != nh {
			t.Errorf("%s: next hop %s, want %s", k, g.nextHop(), nh)
		}
		if c := g.communities(); !slices.Equal(c, []string{"65535:65281", "65535:666"}) {
			t.Errorf("%s: communities %v", k, c)
		}
		if l := g.large(); !slices.Equal(l, large) {
			t.Errorf("%s: large communities %v, want %v", k, l, large)
		}
	}
	flows := map[string]string{
		"20.0.1.0/24": "65001:666:1", "20.0.2.0/23": "65001:666:1", "20.0.3.0/24": "65001:666:2", "43.0.0.0/16": "65001:666:2",
		"2a00:1::/32/0": "65001:666:1",
	}
	for p, large := range flows {
		fam := "ipv4-flowspec"
		if strings.Contains(p, ":") {
			fam = "ipv6-flowspec"
		}
		for _, dir := range []string{"destination", "source"} {
			k := fam + " [" + dir + ": " + p + "]"
			g, ok := ps[k]
			if !ok {
				t.Errorf("%s not received", k)
				continue
			}
			if e := g.ext(); len(e) != 1 || e[0] != "discard(as: 65001)" {
				t.Errorf("%s: actions %v, want [discard(as: 65001)]", k, e)
			}
			if l := g.large(); !slices.Equal(l, []string{large}) {
				t.Errorf("%s: large communities %v, want %s", k, l, large)
			}
		}
	}
	// Sent counts per family, from the speaker's side.
	st := established(t, s)
	want := map[string]int{"ipv4-unicast": 4, "ipv6-unicast": 1, "ipv4-flowspec": 8, "ipv6-flowspec": 2}
	for f, n := range want {
		if st[0].Sent[f] != n {
			t.Errorf("Peers: sent %s = %d, want %d (%v)", f, st[0].Sent[f], n, st[0].Sent)
		}
	}
	if st[0].EstablishedSince.IsZero() || st[0].ASN != 65001 || len(st[0].Families) != 4 {
		t.Errorf("Peers: %+v", st[0])
	}
}

func TestApplyIsADelta(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local := lab.Loopback(t)
	r := newReceiver(t, 65001, 65001, local)
	n := r.neighbor(65001, local)
	n.Announce = []string{AnnounceBlackhole, AnnounceFlowSpec}
	n.Families = []string{FamilyIPv4, FamilyIPv6}
	s := startSpeaker(t, baseOptions(local, n), intent(twoTargets()...))
	before := established(t, s)[0]
	r.waitCount(t, 15)

	c, err := s.Apply(ctx, intent(twoTargets()...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Added+c.Withdrawn+c.Replaced != 0 || c.Unchanged != 15 {
		t.Fatalf("same Intent again: %+v", c)
	}
	// bytedance loses 20.0.1.0/24 and gains 20.0.9.0/24.
	ts := twoTargets()
	ts[0].prefixes = []string{"20.0.2.0/24", "20.0.3.0/24", "20.0.9.0/24", "2a00:1::/32"}
	c, err = s.Apply(ctx, intent(ts...))
	if err != nil {
		t.Fatal(err)
	}
	v4 := c.ByFamily["ipv4-unicast"]
	fl := c.ByFamily["ipv4-flowspec"]
	if v4.Added != 1 || v4.Withdrawn != 1 || v4.Replaced != 0 || fl.Added != 2 || fl.Withdrawn != 2 || c.Replaced != 0 {
		t.Fatalf("counts %+v", c)
	}
	r.waitCount(t, 15)
	ps := r.paths(t)
	if _, ok := ps["ipv4-unicast 20.0.9.0/24"]; !ok {
		t.Error("20.0.9.0/24 not received")
	}
	if _, ok := ps["ipv4-unicast 20.0.1.0/24"]; ok {
		t.Error("20.0.1.0/24 not withdrawn")
	}
	// 20.0.3.0/24 leaves tencent: same prefix, new attributes: a replace.
	ts[1].prefixes = []string{"43.0.0.0/16"}
	c, err = s.Apply(ctx, intent(ts...))
	if err != nil {
		t.Fatal(err)
	}
	if c.ByFamily["ipv4-unicast"].Replaced != 1 || c.ByFamily["ipv4-unicast"].Added != 0 {
		t.Fatalf("counts %+v", c)
	}
	after := established(t, s)[0]
	if !after.EstablishedSince.Equal(before.EstablishedSince) {
		t.Errorf("session was reset: established %v, before %v", after.EstablishedSince, before.EstablishedSince)
	}
}
