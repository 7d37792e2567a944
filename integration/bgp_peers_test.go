package integration

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
)

// TestBGPRealPeers announces the embedded Intent (real registry data,
// ~2,500 RTBH routes and ~700 FlowSpec rules) to each real daemon and reads
// back, from the daemon's own CLI, that it holds exactly that set with the
// right next hops, communities, large communities and actions.
func TestBGPRealPeers(t *testing.T) {
	lab.Short(t)
	in := embeddedIntent(t)
	rtbh, flow := expectRTBH(in), expectFlowSpec(in)
	type peerCase struct {
		start func(t testing.TB, c lab.Config) lab.Peer
		fams  []lab.Family
		// large: the daemon shows large communities of FlowSpec rules
		flowLarge bool
	}
	cases := map[string]peerCase{
		"bird": {func(t testing.TB, c lab.Config) lab.Peer {
			c.Extra = lab.BIRDDiscardStatics
			return lab.StartBIRD(t, c)
		}, lab.AllFamilies, true},
		"frr":      {func(t testing.TB, c lab.Config) lab.Peer { return lab.StartFRR(t, c) }, lab.AllFamilies, false},
		"gobgpd":   {func(t testing.TB, c lab.Config) lab.Peer { return lab.StartGoBGPd(t, c) }, lab.AllFamilies, true},
		"exabgp":   {func(t testing.TB, c lab.Config) lab.Peer { return lab.StartExaBGP(t, c) }, lab.AllFamilies, true},
		"openbgpd": {func(t testing.TB, c lab.Config) lab.Peer { return lab.StartOpenBGPD(t, c) }, []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}, false},
	}
	for name, pc := range cases {
		t.Run(name, func(t *testing.T) {
			lab.Parallel(t)
			ctx := context.Background()
			local := lab.Loopback(t)
			p := pc.start(t, lab.Config{ASN: speakerASN, Sessions: []lab.Session{{Addr: local, ASN: speakerASN, Passive: true, Families: pc.fams}}})
			announce := []string{bgp.AnnounceBlackhole, bgp.AnnounceFlowSpec}
			if len(pc.fams) == 2 {
				announce = announce[:1] // OpenBGPD has no FlowSpec
			}
			sp := startSpeaker(t, local, in, neighborOf(p, local, speakerASN, announce...))
			lab.WaitEstablished(t, ctx, p, local, 30*time.Second)
			for _, f := range pc.fams {
				if f.Unicast() {
					checkHolds(t, ctx, p, f, rtbh, true)
				} else {
					checkHolds(t, ctx, p, f, flow, pc.flowLarge)
				}
			}
			// The speaker's own view of what it sent agrees.
			st, err := sp.Peers(ctx)
			if err != nil || len(st) != 1 || st[0].State != "established" {
				t.Fatalf("speaker peers %+v %v", st, err)
			}
			for _, f := range pc.fams {
				want := countIn(rtbh, f) + countIn(flow, f)
				if st[0].Sent[string(f)] != want {
					t.Errorf("speaker: sent %d %s paths, want %d", st[0].Sent[string(f)], f, want)
				}
			}
		})
	}
}

// TestBGPNeighborLimits: a neighbor configured for blackhole only gets no
// FlowSpec although its daemon offers it, and a neighbor limited to one
// target gets only that target's routes.
func TestBGPNeighborLimits(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	in := embeddedIntent(t)
	local := lab.Loopback(t)
	session := []lab.Session{{Addr: local, ASN: speakerASN, Passive: true, Families: lab.AllFamilies}}
	frr := lab.StartFRR(t, lab.Config{ASN: speakerASN, Sessions: session})
	gobgpd := lab.StartGoBGPd(t, lab.Config{ASN: speakerASN, Sessions: session})
	nFRR := neighborOf(frr, local, speakerASN, bgp.AnnounceBlackhole)
	nFRR.Targets = []string{"bytedance"}
	nGo := neighborOf(gobgpd, local, speakerASN, bgp.AnnounceFlowSpec)
	nGo.Targets = []string{"tencent"}
	startSpeaker(t, local, in, nFRR, nGo)
	lab.WaitEstablished(t, ctx, frr, local, 30*time.Second)
	lab.WaitEstablished(t, ctx, gobgpd, local, 30*time.Second)

	checkHolds(t, ctx, frr, lab.IPv4Unicast, expectRTBH(in, "bytedance"), true)
	checkHolds(t, ctx, frr, lab.IPv6Unicast, expectRTBH(in, "bytedance"), true)
	checkHolds(t, ctx, gobgpd, lab.IPv4FlowSpec, expectFlowSpec(in, "tencent"), true)
	checkHolds(t, ctx, gobgpd, lab.IPv6FlowSpec, expectFlowSpec(in, "tencent"), true)
	// Both sessions are up with all four families offered by the daemon:
	// what is not configured was never negotiated, so nothing arrived.
	for _, c := range []struct {
		p lab.Peer
		f lab.Family
	}{{frr, lab.IPv4FlowSpec}, {frr, lab.IPv6FlowSpec}, {gobgpd, lab.IPv4Unicast}, {gobgpd, lab.IPv6Unicast}} {
		if n, err := c.p.Count(ctx, c.f); err != nil || n != 0 {
			t.Errorf("%s holds %d %s routes (%v), want none", c.p.Name(), n, c.f, err)
		}
	}
}

// TestBGPIPv6Session: a neighbor with an IPv6 address gets, by default,
// the IPv6 families only (over a session on ::1 with BIRD): IPv6 RTBH
// routes with their next hop and IPv6 FlowSpec rules, nothing of IPv4.
func TestBGPIPv6Session(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	in := embeddedIntent(t)
	lo6 := netip.IPv6Loopback()
	bird := lab.StartBIRD(t, lab.Config{Addr: lo6, ASN: speakerASN, Extra: lab.BIRDDiscardStatics,
		Sessions: []lab.Session{{Addr: lo6, ASN: speakerASN, Passive: true, Families: lab.AllFamilies}}})
	n := bgp.NeighborConfig{Address: lo6.String(), Port: bird.Port(), ASN: speakerASN, LocalAddress: lo6.String(),
		Announce: []string{bgp.AnnounceBlackhole, bgp.AnnounceFlowSpec}, ConnectRetry: 1}
	startSpeaker(t, lab.Loopback(t), in, n)
	lab.WaitEstablished(t, ctx, bird, lo6, 30*time.Second)
	checkHolds(t, ctx, bird, lab.IPv6Unicast, expectRTBH(in), true)
	checkHolds(t, ctx, bird, lab.IPv6FlowSpec, expectFlowSpec(in), true)
	for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv4FlowSpec} {
		if c, err := bird.Count(ctx, f); err != nil || c != 0 {
			t.Errorf("bird holds %d %s routes (%v) over an IPv6 session without families: [ipv4]", c, f, err)
		}
	}
}
