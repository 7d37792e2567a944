package lab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fed is what every daemon test announces from a feeder.
var fed = []Route{
	{Family: IPv4Unicast, Prefix: netip.MustParsePrefix("20.0.1.0/24"), ASPath: []uint32{4134, 396986},
		Communities: []string{"65001:100", "65535:65281", "65535:666"}, LargeCommunities: []string{"65001:666:1", "65001:666:2"}},
	{Family: IPv6Unicast, Prefix: netip.MustParsePrefix("2a00:1::/32"), Communities: []string{"65535:65281", "65535:666"}},
	{Family: IPv4FlowSpec, Flow: &Flow{Dst: netip.MustParsePrefix("20.0.1.0/24")}, Actions: []string{"discard"}},
	{Family: IPv4FlowSpec, Flow: &Flow{Src: netip.MustParsePrefix("20.0.1.0/24")}, Actions: []string{"dscp:10"}},
	{Family: IPv6FlowSpec, Flow: &Flow{Src: netip.MustParsePrefix("2a00:1::/32")}, Actions: []string{"rate-limit:1000"}},
}

// TestDaemons feeds each daemon the same routes from an in-process GoBGP
// and checks that its reader returns exactly them, attributes included;
// then a withdrawal, and the session's state.
func TestDaemons(t *testing.T) {
	Short(t)
	starters := map[string]func(t testing.TB, c Config) Peer{
		"bird":     func(t testing.TB, c Config) Peer { c.Extra = BIRDDiscardStatics; return StartBIRD(t, c) },
		"frr":      func(t testing.TB, c Config) Peer { return StartFRR(t, c) },
		"gobgpd":   func(t testing.TB, c Config) Peer { return StartGoBGPd(t, c) },
		"exabgp":   func(t testing.TB, c Config) Peer { return StartExaBGP(t, c) },
		"openbgpd": func(t testing.TB, c Config) Peer { return StartOpenBGPD(t, c) },
	}
	for name, startPeer := range starters {
		t.Run(name, func(t *testing.T) {
			Parallel(t)
			ctx := context.Background()
			fams := AllFamilies
			if name == "openbgpd" {
				fams = []Family{IPv4Unicast, IPv6Unicast}
			}
			fa := Loopback(t)
			p := startPeer(t, Config{ASN: 65002, Sessions: []Session{{Addr: fa, ASN: 65001, Passive: true, Families: fams}}})
			f := NewFeeder(t, Config{Addr: fa, ASN: 65001, Sessions: []Session{{Addr: p.Addr(), Port: p.Port(), ASN: 65002, Families: fams}}})
			si := WaitEstablished(t, ctx, p, fa, 30*time.Second)
			var want []Route
			for _, r := range fed {
				if slices.Contains(fams, r.Family) {
					want = append(want, r)
				}
			}
			if err := f.Announce(ctx, want...); err != nil {
				t.Fatal(err)
			}
			for _, fam := range fams {
				var exp []Route
				for _, r := range want {
					if r.Family == fam {
						exp = append(exp, r)
					}
				}
				WaitCount(t, ctx, p, fam, len(exp), 15*time.Second)
				got, err := p.Routes(ctx, fam)
				if err != nil {
					t.Fatal(err)
				}
				idx, err := RoutesByKey(got)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range exp {
					g, ok := idx[w.Key()]
					if !ok {
						t.Errorf("%s: %s missing; got %v", name, w.Key(), got)
						continue
					}
					if w.Family.Unicast() {
						wantNH := "192.0.2.1"
						if w.Family.IPv6() {
							wantNH = "100::1"
						}
						if g.NextHop.String() != wantNH {
							t.Errorf("%s: %s next hop %s, want %s", name, w.Key(), g.NextHop, wantNH)
						}
						// FRR adds NO_EXPORT to BLACKHOLE routes itself (RFC 7999); the fed set already has it.
						if !slices.Equal(g.Communities, w.Communities) || !slices.Equal(g.LargeCommunities, w.LargeCommunities) {
							t.Errorf("%s: %s communities %v %v, want %v %v", name, w.Key(), g.Communities, g.LargeCommunities, w.Communities, w.LargeCommunities)
						}
						if wantPath := append([]uint32{65001}, w.ASPath...); !slices.Equal(g.ASPath, wantPath) {
							t.Errorf("%s: %s AS path %v, want %v", name, w.Key(), g.ASPath, wantPath)
						}
					} else if !slices.Equal(g.Actions, w.Actions) {
						t.Errorf("%s: %s actions %v, want %v", name, w.Key(), g.Actions, w.Actions)
					}
				}
			}
			if err := f.Withdraw(ctx, want[1]); err != nil {
				t.Fatal(err)
			}
			WaitCount(t, ctx, p, want[1].Family, 0, 15*time.Second)
			after, err := p.Session(ctx, fa)
			if err != nil {
				t.Fatal(err)
			}
			if !si.Unchanged(after) || (after.Ups != -1 && after.Ups != 1) {
				t.Errorf("%s: session %+v, was %+v: it flapped", name, after, si)
			}
		})
	}
}

// TestNetnsPair peers BIRD in one namespace with FRR in the other over
// the veth link (IPv4 and IPv6 sessions) and checks a static route of
// BIRD's arrives at FRR.
func TestNetnsPair(t *testing.T) {
	Short(t)
	Parallel(t)
	ctx := context.Background()
	p := NewPair(t)
	static := `protocol static s4 { ipv4; route 20.0.9.0/24 blackhole; }
protocol static s6 { ipv6; route 2a00:9::/32 blackhole; }
`
	b := StartBIRD(t, Config{Netns: p.A.Name, Addr: p.A.V4, Addr6: p.A.V6, ASN: 65001, Extra: static, Sessions: []Session{
		{Addr: p.B.V4, ASN: 65002, Families: []Family{IPv4Unicast}, Export: "where source = RTS_STATIC"},
		{Addr: p.B.V6, ASN: 65002, Families: []Family{IPv6Unicast}, Export: "where source = RTS_STATIC"},
	}})
	f := StartFRR(t, Config{Netns: p.B.Name, Addr: p.B.V4, Addr6: p.B.V6, ASN: 65002, Sessions: []Session{
		{Addr: p.A.V4, ASN: 65001, Families: []Family{IPv4Unicast}},
		{Addr: p.A.V6, ASN: 65001, Families: []Family{IPv6Unicast}},
	}})
	WaitEstablished(t, ctx, f, p.A.V4, 30*time.Second)
	WaitEstablished(t, ctx, f, p.A.V6, 30*time.Second)
	WaitEstablished(t, ctx, b, p.B.V4, 30*time.Second)
	for fam, want := range map[Family]string{IPv4Unicast: "20.0.9.0/24", IPv6Unicast: "2a00:9::/32"} {
		WaitCount(t, ctx, f, fam, 1, 15*time.Second)
		rs, err := f.Routes(ctx, fam)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Prefix.String() != want || !slices.Equal(rs[0].ASPath, []uint32{65001}) {
			t.Errorf("frr holds %+v, want %s from AS65001", rs, want)
		}
	}
	// The namespaces are really separate: the test's own namespace has no 10.0.0.1.
	if out, err := run(ctx, "", "ip", "-brief", "addr"); err != nil || strings.Contains(string(out), "10.0.0.1/30") {
		t.Errorf("veth address leaked into the test's namespace: %s %v", out, err)
	}
}
