package integration

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// speakerASN is the embedded speaker's AS; peers are iBGP by default
// (RTBH is for the operator's own routers).
const speakerASN = 65001

// embeddedIntent is the embedded snapshot (real registry data) through the
// default policy: what `asfence announce --offline` would announce.
func embeddedIntent(t testing.TB) *policy.Intent {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	// The built-in targets as configured by default: name-only ASNs out.
	return policy.DefaultPolicy().Apply(asn.Select(s, asn.Builtin()))
}

// bgpLog keeps the speaker quiet unless -v.
func bgpLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetLevel(logrus.InfoLevel)
		l.SetOutput(tlogWriter{t})
	}
	return logrus.NewEntry(l)
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// neighborOf is the speaker's neighbor config for a lab daemon.
func neighborOf(p lab.Peer, local netip.Addr, asn uint32, announce ...string) bgp.NeighborConfig {
	return bgp.NeighborConfig{Address: p.Addr().String(), Port: p.Port(), ASN: asn, LocalAddress: local.String(),
		Announce: announce, Families: []string{bgp.FamilyIPv4, bgp.FamilyIPv6}, ConnectRetry: 1,
		Multihop: asn != speakerASN, AllowEBGP: asn != speakerASN, Description: p.Name()}
}

// startSpeaker runs the embedded speaker at local with the Intent loaded.
func startSpeaker(t testing.TB, local netip.Addr, in *policy.Intent, ns ...bgp.NeighborConfig) *bgp.Speaker {
	t.Helper()
	sp, err := bgp.New(bgp.Options{Config: bgp.Config{ASN: speakerASN, RouterID: local.String(), Neighbors: ns}, Log: bgpLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(context.Background(), false) })
	return sp
}

// expectedRoute is what a peer should hold for one NLRI.
type expectedRoute struct {
	key   string // lab.Route.Key()
	large []string
}

// expectRTBH lists the RTBH routes for an Intent: every prefix exactly,
// tagged with every target that has it. targets limits it ("" = all).
func expectRTBH(in *policy.Intent, targets ...string) map[string]expectedRoute {
	out := map[string]expectedRoute{}
	for _, tg := range in.Targets {
		if len(targets) > 0 && !slices.Contains(targets, tg.Name) {
			continue
		}
		for _, p := range tg.Prefixes {
			fam := lab.IPv4Unicast
			if p.Prefix.Addr().Is6() {
				fam = lab.IPv6Unicast
			}
			k := lab.Route{Family: fam, Prefix: p.Prefix}.Key()
			e := out[k]
			e.key = k
			e.large = append(e.large, fmt.Sprintf("%d:666:%d", speakerASN, tg.ID))
			out[k] = e
		}
	}
	return sortLarge(out)
}

// expectFlowSpec lists the FlowSpec rules: per target the coverage of its
// prefixes, a destination and a source rule each.
func expectFlowSpec(in *policy.Intent, targets ...string) map[string]expectedRoute {
	out := map[string]expectedRoute{}
	for _, tg := range in.Targets {
		if len(targets) > 0 && !slices.Contains(targets, tg.Name) {
			continue
		}
		for _, f := range []prefixset.Family{prefixset.IPv4, prefixset.IPv6} {
			fam := lab.IPv4FlowSpec
			if f == prefixset.IPv6 {
				fam = lab.IPv6FlowSpec
			}
			for _, p := range prefixset.Coverage(tg.Exact(f)) {
				for _, fl := range []lab.Flow{{Dst: p}, {Src: p}} {
					k := lab.Route{Family: fam, Flow: &fl}.Key()
					e := out[k]
					e.key = k
					e.large = append(e.large, fmt.Sprintf("%d:666:%d", speakerASN, tg.ID))
					out[k] = e
				}
			}
		}
	}
	return sortLarge(out)
}

func sortLarge(m map[string]expectedRoute) map[string]expectedRoute {
	for k, e := range m {
		sort.Strings(e.large)
		e.large = slices.Compact(e.large)
		m[k] = e
	}
	return m
}

func famOf(key string) lab.Family { return lab.Family(strings.Fields(key)[0]) }

// countIn counts the expected routes of one family.
func countIn(m map[string]expectedRoute, f lab.Family) int {
	n := 0
	for k := range m {
		if famOf(k) == f {
			n++
		}
	}
	return n
}

// checkHolds waits until p holds exactly the expected routes of family f,
// then checks each one's attributes: RTBH next hop and communities,
// FlowSpec discard action; the large communities where the daemon shows
// them (checkLarge).
func checkHolds(t *testing.T, ctx context.Context, p lab.Peer, f lab.Family, want map[string]expectedRoute, checkLarge bool) {
	t.Helper()
	n := countIn(want, f)
	lab.WaitCount(t, ctx, p, f, n, 60*time.Second)
	got, err := p.Routes(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lab.RoutesByKey(got)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf("%s %s: "+format, append([]any{p.Name(), f}, args...)...)
		}
	}
	for k, e := range want {
		if famOf(k) != f {
			continue
		}
		r, ok := idx[k]
		if !ok {
			report("%s missing", k)
			continue
		}
		if f.Unicast() {
			nh := bgp.DefaultNextHopV4
			if f.IPv6() {
				nh = bgp.DefaultNextHopV6
			}
			if r.NextHop.String() != nh {
				report("%s next hop %s, want %s", k, r.NextHop, nh)
			}
			if !r.HasCommunity("65535:666") || !r.HasCommunity("65535:65281") {
				report("%s communities %v, want BLACKHOLE and NO_EXPORT", k, r.Communities)
			}
		} else if !slices.Equal(r.Actions, []string{"discard"}) {
			report("%s actions %v, want [discard]", k, r.Actions)
		}
		if checkLarge && !slices.Equal(r.LargeCommunities, e.large) {
			report("%s large communities %v, want %v", k, r.LargeCommunities, e.large)
		}
	}
	for k := range idx {
		if _, ok := want[k]; !ok {
			report("unexpected %s", k)
		}
	}
	if bad > 10 {
		t.Errorf("%s %s: %d problems in all", p.Name(), f, bad)
	}
}
