package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
)

// TestBGPAttributesChangeLive: a config reload that changes the blackhole
// communities, the IPv4 next hop and the FlowSpec action reaches a real
// BIRD as replaced routes on the same session (never reset); a change the
// speaker cannot build (more FlowSpec rules than max_rules) changes nothing.
func TestBGPAttributesChangeLive(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	local := lab.Loopback(t)
	in := embeddedIntent(t)
	bird := lab.StartBIRD(t, lab.Config{ASN: speakerASN, Extra: lab.BIRDDiscardStatics +
		"protocol static discard4b { ipv4; route 192.0.2.99/32 blackhole; }\n",
		Sessions: []lab.Session{{Addr: local, ASN: speakerASN, Passive: true, Families: lab.AllFamilies}}})
	sp := startSpeaker(t, local, in, neighborOf(bird, local, speakerASN, bgp.AnnounceBlackhole, bgp.AnnounceFlowSpec))
	rtbh, flows := expectRTBH(in), expectFlowSpec(in)
	n4, n6 := countIn(rtbh, lab.IPv4Unicast), countIn(rtbh, lab.IPv6Unicast)
	nf4 := countIn(flows, lab.IPv4FlowSpec)
	lab.WaitCount(t, ctx, bird, lab.IPv4Unicast, n4, 60*time.Second)
	lab.WaitCount(t, ctx, bird, lab.IPv4FlowSpec, nf4, 60*time.Second)
	before := lab.WaitEstablished(t, ctx, bird, local, 30*time.Second)

	bh := bgp.BlackholeConfig{NextHopV4: "192.0.2.99", Communities: []string{"64512:100"}}
	fs := bgp.FlowSpecConfig{Action: "rate-limit", Rate: 1000}
	c, err := sp.UpdateAttributes(ctx, bh, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Added != 0 || c.Withdrawn != 0 || c.Replaced != len(rtbh)+len(flows) {
		t.Fatalf("counts %+v, want every route and rule replaced (%d), none added or withdrawn", c, len(rtbh)+len(flows))
	}
	// Every IPv4 route carries the new next hop and community; IPv6 keeps
	// its next hop and gets the community; FlowSpec rules rate-limit.
	err = lab.Eventually(ctx, 60*time.Second, func(ctx context.Context) error {
		for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast, lab.IPv4FlowSpec} {
			routes, err := bird.Routes(ctx, f)
			if err != nil {
				return err
			}
			want := map[lab.Family]int{lab.IPv4Unicast: n4, lab.IPv6Unicast: n6, lab.IPv4FlowSpec: nf4}[f]
			if len(routes) != want {
				return fmt.Errorf("%s: %d routes, want %d", f, len(routes), want)
			}
			for _, r := range routes {
				switch {
				case f == lab.IPv4Unicast && (r.NextHop.String() != "192.0.2.99" || !slices.Contains(r.Communities, "64512:100")):
					return fmt.Errorf("%s: next hop %s, communities %v", r.Prefix, r.NextHop, r.Communities)
				case f == lab.IPv6Unicast && (r.NextHop.String() != bgp.DefaultNextHopV6 || !slices.Contains(r.Communities, "64512:100")):
					return fmt.Errorf("%s: next hop %s, communities %v", r.Prefix, r.NextHop, r.Communities)
				case f == lab.IPv4FlowSpec && !slices.ContainsFunc(r.Actions, func(a string) bool { return strings.HasPrefix(a, "rate-limit:1000") }):
					return fmt.Errorf("%s: actions %v", r.Flow, r.Actions)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := lab.WaitEstablished(t, ctx, bird, local, 10*time.Second)
	if !before.Unchanged(after) {
		t.Fatalf("session was reset: before %+v, after %+v", before, after)
	}

	// Over the rule budget: an error, and BIRD keeps what it has.
	if _, err := sp.UpdateAttributes(ctx, bh, bgp.FlowSpecConfig{Action: "discard", MaxRules: 10}); err == nil || !strings.Contains(err.Error(), "max_rules") {
		t.Fatalf("over max_rules: %v", err)
	}
	routes, err := bird.Routes(ctx, lab.IPv4FlowSpec)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != nf4 || !slices.ContainsFunc(routes[0].Actions, func(a string) bool { return strings.HasPrefix(a, "rate-limit:1000") }) {
		t.Fatalf("after the refused change BIRD holds %d rules (want %d), first %v", len(routes), nf4, routes[0].Actions)
	}
}
