package integration

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/policy"
)

// TestBGPGuard hands the speaker an Intent that the policy would never
// produce: default routes, bogons and the operator's protected space. None
// of it may reach a real router; the one good prefix must.
func TestBGPGuard(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	local := lab.Loopback(t)
	bird := lab.StartBIRD(t, lab.Config{ASN: speakerASN, Extra: lab.BIRDDiscardStatics,
		Sessions: []lab.Session{{Addr: local, ASN: speakerASN, Passive: true, Families: lab.AllFamilies}}})
	bad := []string{
		"0.0.0.0/0", "::/0", // default routes
		"10.0.0.0/8", "192.168.0.0/16", "100.64.0.0/10", "224.0.0.0/4", // bogons
		"2001:db8::/32", "fc00::/7", "fe80::/10", "4000::/3", // bogons, outside 2000::/3
		"43.128.0.0/10",   // covers the protected 43.130.5.0/24
		"43.130.5.128/25", // inside it
		"2401:1000::/32",  // protected (exactly)
	}
	good := "20.0.1.0/24"
	in := &policy.Intent{Targets: []policy.TargetIntent{{Name: "bytedance", ID: 1}}}
	for _, s := range append(bad, good) {
		in.Targets[0].Prefixes = append(in.Targets[0].Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix(s)})
	}
	sp, err := bgp.New(bgp.Options{
		Config: bgp.Config{ASN: speakerASN, RouterID: local.String(),
			Neighbors: []bgp.NeighborConfig{neighborOf(bird, local, speakerASN, bgp.AnnounceBlackhole, bgp.AnnounceFlowSpec)}},
		Protect: []netip.Prefix{netip.MustParsePrefix("43.130.5.0/24"), netip.MustParsePrefix("2401:1000::/32")},
		Log:     bgpLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(context.Background(), false) })
	lab.WaitEstablished(t, ctx, bird, local, 30*time.Second)
	c, err := sp.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.Refused != len(bad) {
		t.Errorf("refused %d, want %d", c.Refused, len(bad))
	}
	want := expectRTBH(&policy.Intent{Targets: []policy.TargetIntent{{Name: "bytedance", ID: 1,
		Prefixes: []asn.Prefix{{Prefix: netip.MustParsePrefix(good)}}}}})
	for k, v := range expectFlowSpec(&policy.Intent{Targets: []policy.TargetIntent{{Name: "bytedance", ID: 1,
		Prefixes: []asn.Prefix{{Prefix: netip.MustParsePrefix(good)}}}}}) {
		want[k] = v
	}
	for _, f := range lab.AllFamilies {
		checkHolds(t, ctx, bird, f, want, true)
	}
}
