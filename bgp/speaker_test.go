package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

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
	lab.Parallel(t)
	local, r, n := iBGPReceiver(t)
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
	lab.Parallel(t)
	ctx := context.Background()
	local, r, n := iBGPReceiver(t)
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
	// The same, compared with what ListPath reads back from the RIB (the
	// speaker's own copy dropped): keys and fingerprints must agree.
	s.installed = nil
	c, err = s.Apply(ctx, intent(twoTargets()...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Added+c.Withdrawn+c.Replaced != 0 || c.Unchanged != 15 {
		t.Fatalf("same Intent against the RIB: %+v", c)
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
	r.waitPaths(t, "ipv4-unicast 20.0.2.0/24", "ipv4-unicast 20.0.3.0/24", "ipv4-unicast 20.0.9.0/24", "ipv4-unicast 43.0.0.0/16", "ipv6-unicast 2a00:1::/32",
		"ipv4-flowspec [destination: 20.0.2.0/23]", "ipv4-flowspec [source: 20.0.2.0/23]",
		"ipv4-flowspec [destination: 20.0.9.0/24]", "ipv4-flowspec [source: 20.0.9.0/24]",
		"ipv4-flowspec [destination: 20.0.3.0/24]", "ipv4-flowspec [source: 20.0.3.0/24]",
		"ipv4-flowspec [destination: 43.0.0.0/16]", "ipv4-flowspec [source: 43.0.0.0/16]",
		"ipv6-flowspec [destination: 2a00:1::/32/0]", "ipv6-flowspec [source: 2a00:1::/32/0]")
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

func TestMaxRulesFailsAndKeepsWhatIsAnnounced(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local := lab.Loopback(t)
	r := newReceiver(t, 65001, 65001, local)
	n := r.neighbor(65001, local)
	n.Announce = []string{AnnounceBlackhole, AnnounceFlowSpec}
	o := baseOptions(local, n)
	o.FlowSpec.MaxRules = 8 // the v4 rules of twoTargets fit exactly
	s := startSpeaker(t, o, intent(twoTargets()...))
	established(t, s)
	r.waitCount(t, 4+8)
	ts := twoTargets()
	ts[1].prefixes = append(ts[1].prefixes, "45.0.0.0/16") // +1 RTBH, +2 rules
	c, err := s.Apply(ctx, intent(ts...))
	if err == nil || !strings.Contains(err.Error(), "10 rules needed, above flowspec.max_rules 8") {
		t.Fatalf("Apply over the budget: %+v, %v", c, err)
	}
	if c.Added+c.Withdrawn+c.Replaced != 0 {
		t.Fatalf("counts after failure: %+v", c)
	}
	// Nothing changed: no subset, not even the RTBH route.
	c, err = s.Apply(ctx, intent(twoTargets()...))
	if err != nil || c.Unchanged != 12 || c.Added+c.Withdrawn+c.Replaced != 0 {
		t.Fatalf("RIB changed by the failed Apply: %+v %v", c, err)
	}
	if _, ok := r.paths(t)["ipv4-unicast 45.0.0.0/16"]; ok {
		t.Error("45.0.0.0/16 announced although the Apply failed")
	}
}

func TestGuardRefusesDangerousPrefixes(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local, r, n := iBGPReceiver(t)
	o := baseOptions(local, n)
	o.Protect = []netip.Prefix{netip.MustParsePrefix("20.0.5.0/24"), netip.MustParsePrefix("2a00:5::/32")}
	s := startSpeaker(t, o, nil)
	established(t, s)
	// A hand-made Intent (the policy would have dropped all but one).
	bad := intent(tgt{"bytedance", 1, []string{
		"0.0.0.0/0", "::/0", "10.0.0.0/8", "192.0.2.0/24", "fd00::/8", "2001:db8::/32",
		"20.0.0.0/16", // covers the protected 20.0.5.0/24
		"20.0.5.128/25", "2a00::/16",
		"43.0.0.0/16", // the only good one
	}})
	c, err := s.Apply(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if c.Refused != 9 || c.Added != 3 {
		t.Fatalf("counts %+v, want 9 refused and 3 added (1 route + 2 rules)", c)
	}
	r.waitCount(t, 3)
	for k := range r.paths(t) {
		if !strings.Contains(k, "43.0.0.0/16") {
			t.Errorf("receiver holds %s", k)
		}
	}
}

func TestNeighborsGetTheirTargetsAndKinds(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local := lab.Loopback(t)
	rTencent := newReceiver(t, 65001, 65001, local) // blackhole, tencent only
	rFlow := newReceiver(t, 65001, 65001, local)    // flowspec only, all targets
	nT := rTencent.neighbor(65001, local)
	nT.Targets = []string{"tencent"}
	nF := rFlow.neighbor(65001, local)
	nF.Announce = []string{AnnounceFlowSpec}
	o := baseOptions(local, nT, nF)
	o.Targets = []string{"bytedance", "tencent"}
	s := startSpeaker(t, o, intent(twoTargets()...))
	established(t, s)
	rTencent.waitCount(t, 2)
	rFlow.waitCount(t, 8)
	for k := range rTencent.paths(t) {
		if k != "ipv4-unicast 20.0.3.0/24" && k != "ipv4-unicast 43.0.0.0/16" {
			t.Errorf("tencent-only neighbor holds %s", k)
		}
	}
	for k := range rFlow.paths(t) {
		if !strings.HasPrefix(k, "ipv4-flowspec ") {
			t.Errorf("flowspec-only neighbor holds %s", k)
		}
	}
	before := established(t, s)

	// Reload: the tencent neighbor now gets bytedance (policy, no reset);
	// the flowspec neighbor is removed; a new one is added.
	rNew := newReceiver(t, 65001, 65001, local)
	nT.Targets = []string{"bytedance"}
	nNew := rNew.neighbor(65001, local)
	c := o.Config
	c.Neighbors = []NeighborConfig{nT, nNew}
	if err := s.UpdateNeighbors(ctx, c); err != nil {
		t.Fatal(err)
	}
	got := rTencent.waitPaths(t, "ipv4-unicast 20.0.1.0/24", "ipv4-unicast 20.0.2.0/24", "ipv4-unicast 20.0.3.0/24")
	if l := got["ipv4-unicast 20.0.3.0/24"].large(); !slices.Equal(l, []string{"65001:666:1", "65001:666:2"}) {
		t.Errorf("20.0.3.0/24 carries %v after the marker dance", l)
	}
	rNew.waitCount(t, 4)
	rFlow.waitCount(t, 0)
	after := established(t, s)
	if len(after) != 2 || after[0].Address != nT.Address || !after[0].EstablishedSince.Equal(before[0].EstablishedSince) {
		t.Errorf("after reload %+v; before %+v", after, before)
	}
}

func TestEBGPNeedsAllowEBGP(t *testing.T) {
	lab.Parallel(t)
	local := lab.Loopback(t)
	r := newReceiver(t, 65002, 65001, local)
	n := r.neighbor(65002, local)
	_, err := New(baseOptions(local, n))
	if err == nil || !strings.Contains(err.Error(), "bgp.neighbors[0].allow_ebgp") {
		t.Fatalf("eBGP RTBH without allow_ebgp: %v", err)
	}
	n.AllowEBGP = true
	s := startSpeaker(t, baseOptions(local, n), intent(twoTargets()...))
	established(t, s)
	r.waitCount(t, 4)
	g := r.paths(t)["ipv4-unicast 43.0.0.0/16"]
	if g.nextHop() != DefaultNextHopV4 || !slices.Equal(g.communities(), []string{"65535:65281", "65535:666"}) {
		t.Errorf("eBGP RTBH route: nh %s communities %v", g.nextHop(), g.communities())
	}
}

func TestStopWithdraws(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local := lab.Loopback(t)
	r := newReceiver(t, 65001, 65001, local)
	s := startSpeaker(t, baseOptions(local, r.neighbor(65001, local)), intent(twoTargets()...))
	established(t, s)
	r.waitCount(t, 4)
	if err := s.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	r.waitCount(t, 0)
	if _, err := s.Apply(ctx, intent()); err == nil {
		t.Error("Apply after Stop succeeded")
	}
}

func TestPasswordReachesGoBGP(t *testing.T) {
	lab.Parallel(t)
	// TCP MD5 itself cannot run here (setsockopt TCP_MD5SIG: ENOPROTOOPT),
	// so only the plumbing is checked: config -> GoBGP's neighbor.
	n := NeighborConfig{Address: "192.0.2.7", ASN: 65001, Password: "s3cret", Description: "rtr1"}
	c := &Config{ASN: 65001, RouterID: "10.0.0.1", Neighbors: []NeighborConfig{n}}
	p := peerConfig(c, n)
	if p.Conf.AuthPassword != "s3cret" || p.Conf.Description != "rtr1" {
		t.Fatalf("peer conf %+v", p.Conf)
	}
	// The rest of the session config, while here.
	m := NeighborConfig{Address: "192.0.2.8", ASN: 65002, Multihop: true, TTL: 3, Passive: true, Port: 1179,
		LocalAddress: "192.0.2.9", Announce: []string{AnnounceFlowSpec}, HoldTime: 30}
	q := peerConfig(c, m)
	if q.EbgpMultihop == nil || q.EbgpMultihop.MultihopTtl != 3 || !q.Transport.PassiveMode || q.Transport.RemotePort != 1179 ||
		q.Transport.LocalAddress != "192.0.2.9" || q.Timers.Config.HoldTime != 30 || q.Timers.Config.KeepaliveInterval != 10 ||
		q.GracefulRestart == nil || q.GracefulRestart.RestartTime != DefaultRestartTime || len(q.AfiSafis) != 1 {
		t.Fatalf("peer %+v", q)
	}
	off := false
	c.GracefulRestart.Enabled = &off
	if q := peerConfig(c, m); q.GracefulRestart != nil || q.AfiSafis[0].MpGracefulRestart != nil {
		t.Fatalf("graceful restart off: %+v", q)
	}
	c.GracefulRestart.Enabled = nil
	local := lab.Loopback(t)
	s := startSpeaker(t, baseOptions(local, n), nil)
	var gotPw string
	err := s.server.ListPeer(context.Background(), &api.ListPeerRequest{Address: n.Address}, func(p *api.Peer) {
		gotPw = p.Conf.AuthPassword
	})
	if err != nil || gotPw != "s3cret" {
		t.Fatalf("GoBGP holds password %q (%v)", gotPw, err)
	}
	ps, err := s.Peers(context.Background())
	if err != nil || len(ps) != 1 || ps[0].Description != "rtr1" || ps[0].State == "established" {
		t.Fatalf("peers %+v %v", ps, err)
	}
}

func TestConfiguredAttributesAndActions(t *testing.T) {
	lab.Parallel(t)
	for _, tc := range []struct {
		flow FlowSpecConfig
		want string // GoBGP's name of the action
	}{
		{FlowSpecConfig{Action: "rate-limit", Rate: 1000}, "rate: 1000.000000(as: 65001)"},
		{FlowSpecConfig{Action: "dscp", DSCP: 10}, "remark: 10"},
	} {
		local, r, n := iBGPReceiver(t)
		o := baseOptions(local, n)
		o.FlowSpec = tc.flow
		o.Blackhole = BlackholeConfig{NextHopV4: "192.0.2.66", NextHopV6: "100::66",
			Communities: []string{"65001:999", "64512:1"}, LargeCommunities: []string{"65001:1:2"}}
		s := startSpeaker(t, o, intent(tgt{"bytedance", 7, []string{"20.0.1.0/24", "2a00:1::/32"}}))
		established(t, s)
		r.waitCount(t, 6)
		ps := r.paths(t)
		for k, nh := range map[string]string{"ipv4-unicast 20.0.1.0/24": "192.0.2.66", "ipv6-unicast 2a00:1::/32": "100::66"} {
			g := ps[k]
			if g.nextHop() != nh || !slices.Equal(g.communities(), []string{"64512:1", "65001:999", "65535:65281", "65535:666"}) ||
				!slices.Equal(g.large(), []string{"65001:1:2", "65001:666:7"}) {
				t.Errorf("%s: nh %s communities %v large %v", k, g.nextHop(), g.communities(), g.large())
			}
		}
		for k, g := range ps {
			if strings.Contains(k, "flowspec") {
				if e := g.ext(); len(e) != 1 || e[0] != tc.want {
					t.Errorf("%s: actions %v, want %s", k, e, tc.want)
				}
				// Rules carry the target tag and NO_EXPORT, not the RTBH communities.
				if !slices.Equal(g.large(), []string{"65001:666:7"}) || !slices.Equal(g.communities(), []string{"65535:65281"}) {
					t.Errorf("%s: large %v communities %v", k, g.large(), g.communities())
				}
			}
		}
	}
}

// A path in the RIB that the speaker does not build (here a FlowSpec rule
// with two components, as an earlier version or an operator's gobgp
// might leave) is withdrawn when the RIB is read, and what the Intent
// wants is left as it is.
func TestApplyWithdrawsForeignPathsFromTheRIB(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	local, r, n := iBGPReceiver(t)
	s := startSpeaker(t, baseOptions(local, n), intent(twoTargets()...))
	established(t, s)
	r.waitCount(t, 15)
	comps, err := bgp.ParseFlowSpecComponents(bgp.RF_FS_IPv4_UC, "destination 20.0.1.0/24 protocol udp")
	if err != nil {
		t.Fatal(err)
	}
	nlri := bgp.NewFlowSpecIPv4Unicast(comps)
	p, err := apiutil.NewPath(nlri, false, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeMpReachNLRI("0.0.0.0", []bgp.AddrPrefixInterface{nlri}),
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.server.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
		t.Fatal(err)
	}
	r.waitCount(t, 16)
	s.mu.Lock()
	s.installed = nil // read the RIB
	s.mu.Unlock()
	c, err := s.Apply(ctx, intent(twoTargets()...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Withdrawn != 1 || c.ByFamily["ipv4-flowspec"].Withdrawn != 1 || c.Unchanged != 15 || c.Added+c.Replaced != 0 {
		t.Fatalf("counts %+v, want the foreign rule withdrawn and 15 unchanged", c)
	}
	r.waitCount(t, 15)
	if _, ok := r.paths(t)["ipv4-flowspec [destination: 20.0.1.0/24][protocol: ==udp]"]; ok {
		t.Error("the foreign rule is still announced")
	}
}
