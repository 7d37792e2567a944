// Package integration holds the tests that run asfence's outputs and
// speaker against real routing daemons, kernels and tools.
package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/prefixtest"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// offer is a route the feeder announces, with what the generated policy
// must do with it.
type fltOffer struct {
	route  lab.Route
	reject bool
	why    string
}

// policyIntent is the embedded default snapshot after the default policy.
func policyIntent(t *testing.T) (*asn.Snapshot, *policy.Intent) {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return s, policy.DefaultPolicy().Apply(s)
}

// targetMatch is the model of the generated policy: a route is rejected
// when a route-filter entry matches it or its origin is a target ASN.
func targetMatch(in *policy.Intent, r lab.Route) bool {
	fam := prefixset.IPv4
	if r.Prefix.Addr().Is6() {
		fam = prefixset.IPv6
	}
	for _, e := range in.RouteFilterEntries("", fam) {
		if e.Matches(r.Prefix) {
			return true
		}
	}
	origin := uint32(65001) // the feeder's own AS when the path is empty
	if n := len(r.ASPath); n > 0 {
		origin = r.ASPath[n-1]
	}
	return slices.Contains(in.ASNs(""), origin)
}

// fltOffers builds the announced routes: hand-picked cases (exact target
// prefix, its more-specifics, a covering less-specific, the adjacent
// prefix, a target origin, a target ASN in transit) and random routes in
// and out of the target space.
func fltOffers(t *testing.T, in *policy.Intent) []fltOffer {
	t.Helper()
	v4 := in.RouteFilterEntries("", prefixset.IPv4)
	v6 := in.RouteFilterEntries("", prefixset.IPv6)
	asns := in.ASNs("")
	if len(v4) < 10 || len(v6) < 5 || len(asns) < 2 {
		t.Fatalf("intent too small: %d %d %v", len(v4), len(v6), asns)
	}
	e4, e6 := v4[0], v6[0]
	origin := asns[0]
	r4 := func(p netip.Prefix, path ...uint32) lab.Route {
		return lab.Route{Family: lab.IPv4Unicast, Prefix: p, ASPath: path}
	}
	r6 := func(p netip.Prefix, path ...uint32) lab.Route {
		return lab.Route{Family: lab.IPv6Unicast, Prefix: p, ASPath: path}
	}
	parent := netip.PrefixFrom(e4.Prefix.Addr(), e4.Prefix.Bits()-1).Masked()
	after := netip.PrefixFrom(prefixtest.LastAddr(e4.Prefix).Next(), e4.Prefix.Bits())
	list := []fltOffer{
		{r4(e4.Prefix, 3356), true, "target prefix"},
		{r4(netip.PrefixFrom(e4.Prefix.Addr(), 24), 3356), true, "more-specific /24 of a target prefix"},
		{r4(netip.PrefixFrom(prefixtest.LastAddr(e4.Prefix), 32), 3356), true, "host route at the end of a target prefix"},
		{r4(parent, 3356), false, "less-specific covering a target prefix"},
		{r4(after, 3356), false, "prefix right after a target prefix"},
		{r4(netip.MustParsePrefix("20.0.1.0/24"), 3356, origin), true, "originated by a target ASN"},
		{r4(netip.MustParsePrefix("20.0.2.0/24"), origin, 3356), false, "target ASN only in transit"},
		{r4(netip.MustParsePrefix("20.0.3.0/24"), 3356), false, "unrelated"},
		{r4(netip.MustParsePrefix("20.0.4.0/22"), 174), false, "unrelated"},
		{r4(netip.MustParsePrefix("20.0.8.0/24")), false, "unrelated, feeder-originated"},
		{r6(e6.Prefix, 3356), true, "IPv6 target prefix"},
		{r6(netip.PrefixFrom(e6.Prefix.Addr(), 64).Masked(), 3356), true, "IPv6 more-specific of a target prefix"},
		{r6(netip.MustParsePrefix("2a00:1::/32"), 3356), false, "IPv6 unrelated"},
		{r6(netip.MustParsePrefix("2a00:2::/32"), 3356, asns[1]), true, "IPv6 originated by a target ASN"},
	}
	// Random more-specifics of random target entries, and random routes
	// outside the target space.
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 30; i++ {
		e := v4[r.IntN(len(v4))]
		l := e.Ge + r.IntN(e.Le-e.Ge+1)
		list = append(list, fltOffer{r4(fltRandomSub(r, e.Prefix, l), 3356, 2914), true, "random target more-specific"})
	}
	for i := 0; i < 30; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(20 + r.IntN(30)), byte(r.IntN(256)), byte(r.IntN(256)), 0}), 16+r.IntN(9)).Masked()
		list = append(list, fltOffer{r4(p, 3356, 2914), targetMatch(in, r4(p, 3356, 2914)), "random"})
	}
	// The labels must agree with the model, and keys must be unique.
	seen := map[netip.Prefix]bool{}
	var out []fltOffer
	for _, o := range list {
		if seen[o.route.Prefix] {
			continue
		}
		seen[o.route.Prefix] = true
		if got := targetMatch(in, o.route); got != o.reject {
			t.Fatalf("test data: %s (%s) is labelled reject=%v, the intent says %v", o.route.Prefix, o.why, o.reject, got)
		}
		out = append(out, o)
	}
	return out
}

func fltRandomSub(r *rand.Rand, p netip.Prefix, bits int) netip.Prefix {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if host := 32 - p.Bits(); host > 0 {
		v |= r.Uint32() & (1<<host - 1)
	}
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, bits).Masked()
}

// fltAccepted lists the prefixes a set of offers leaves after the policy (or
// all of them).
func fltAccepted(list []fltOffer, all bool) []string {
	var out []string
	for _, o := range list {
		if all || !o.reject {
			out = append(out, o.route.Prefix.String())
		}
	}
	sort.Strings(out)
	return out
}

// fltHolds lists the unicast prefixes a daemon holds.
func fltHolds(ctx context.Context, p lab.Peer) ([]string, error) {
	var out []string
	for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast} {
		rs, err := p.Routes(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out = append(out, r.Prefix.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

// fltWaitHolds polls until the daemon holds exactly want.
func fltWaitHolds(t *testing.T, ctx context.Context, p lab.Peer, want []string, what string) {
	t.Helper()
	var got []string
	err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		var err error
		got, err = fltHolds(ctx, p)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("holds %d routes, want %d", len(got), len(want))
		}
		return nil
	})
	if err != nil {
		extra, missing := fltListDiff(got, want)
		t.Fatalf("%s %s: %v\naccepted but should be rejected: %v\nrejected but should be accepted: %v\n%s",
			p.Name(), what, err, extra, missing, fltLastLines(p.Log(), 20))
	}
}

func fltListDiff(got, want []string) (extra, missing []string) {
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	return extra, missing
}

func fltLastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func fltRenderFile(t *testing.T, in *policy.Intent, vendor, dir string) string {
	t.Helper()
	b, err := filters.Render(in, filters.RenderOptions{Vendor: vendor, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, filters.FileName(vendor))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// changedSnapshot returns the snapshot after a registry change: every
// prefix inside the first IPv4 route-filter entry is gone, 20.0.3.0/24 is
// added to the first target, and AS174 becomes one of its origins.
func changedSnapshot(t *testing.T, in *policy.Intent) *asn.Snapshot {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	gone := in.RouteFilterEntries("", prefixset.IPv4)[0].Prefix
	for i := range s.Targets {
		s.Targets[i].Prefixes = slices.DeleteFunc(s.Targets[i].Prefixes, func(p asn.Prefix) bool {
			return gone.Bits() <= p.Prefix.Bits() && gone.Contains(p.Prefix.Addr())
		})
	}
	ev := []asn.Evidence{{Source: "test", Detail: "registry change", Seen: s.GeneratedAt}}
	s.Targets[0].Prefixes = append(s.Targets[0].Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix("20.0.3.0/24"), Origins: []uint32{}, Evidence: ev})
	s.Targets[0].ASNs = append(s.Targets[0].ASNs, asn.ASN{ASN: 174, Evidence: ev})
	s.Normalize()
	return s
}

// TestFiltersBlockOnFRRAndBIRD loads the generated FRR and BIRD policies
// on an inbound session from a real BGP speaker (GoBGP) that offers target
// and non-target routes, and reads from each daemon that exactly the
// non-target routes were accepted; a third daemon without the policy
// proves every route was offered. Then the registry changes: FRR gets the
// incremental commands (vtysh), BIRD the new file (birdc configure), and
// both again hold exactly what the new policy allows.
func TestFiltersBlockOnFRRAndBIRD(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "vtysh", "birdc")
	ctx := context.Background()
	_, in := policyIntent(t)
	offered := fltOffers(t, in)
	dir := lab.Dir(t)
	frrFile, err := os.ReadFile(fltRenderFile(t, in, "frr", dir))
	if err != nil {
		t.Fatal(err)
	}
	birdFile := fltRenderFile(t, in, "bird", dir)

	fa := lab.Loopback(t)
	fams := []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}
	session := func(imp string) []lab.Session {
		return []lab.Session{{Addr: fa, ASN: 65001, Passive: true, Families: fams, Import: imp}}
	}
	frr := lab.StartFRR(t, lab.Config{ASN: 65002, Extra: string(frrFile), Sessions: session("ASFENCE-REJECT")})
	bird := lab.StartBIRD(t, lab.Config{ASN: 65002, Sessions: session("filter ASFENCE_REJECT"),
		Extra: lab.BIRDDiscardStatics + fmt.Sprintf("include %q;\n", birdFile)})
	control := lab.StartBIRD(t, lab.Config{ASN: 65002, Sessions: session(""), Extra: lab.BIRDDiscardStatics})
	var feedTo []lab.Session
	for _, p := range []lab.Peer{frr, bird, control} {
		feedTo = append(feedTo, lab.Session{Addr: p.Addr(), Port: p.Port(), ASN: 65002, Families: fams})
	}
	feeder := lab.NewFeeder(t, lab.Config{Addr: fa, ASN: 65001, Sessions: feedTo})
	for _, p := range []lab.Peer{frr, bird, control} {
		lab.WaitEstablished(t, ctx, p, fa, 30*time.Second)
	}
	routes := make([]lab.Route, len(offered))
	for i, o := range offered {
		routes[i] = o.route
	}
	if err := feeder.Announce(ctx, routes...); err != nil {
		t.Fatal(err)
	}
	want := fltAccepted(offered, false)
	fltWaitHolds(t, ctx, control, fltAccepted(offered, true), "without the policy")
	fltWaitHolds(t, ctx, frr, want, "with the generated route-map")
	fltWaitHolds(t, ctx, bird, want, "with the generated filter")
	t.Logf("%d routes offered, %d accepted by FRR and BIRD", len(offered), len(want))

	// The registry changes.
	s2 := changedSnapshot(t, in)
	in2 := policy.DefaultPolicy().Apply(s2)
	var want2 []string
	for _, o := range offered {
		if !targetMatch(in2, o.route) {
			want2 = append(want2, o.route.Prefix.String())
		}
	}
	sort.Strings(want2)
	if slices.Equal(want, want2) {
		t.Fatal("test data: the change does not change what is accepted")
	}
	// FRR: incremental commands through vtysh, then a route refresh.
	up, err := filters.IncrementalCommands("frr", in, in2, filters.RenderOptions{})
	if err != nil || up.FullReplace != "" {
		t.Fatalf("frr incremental: %v %+v", err, up)
	}
	cmds := up.Commands
	inc := filepath.Join(dir, "frr-incremental.conf")
	if err := os.WriteFile(inc, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", frr.VtyDir(), "-f", inc).CombinedOutput(); err != nil {
		t.Fatalf("vtysh -f incremental: %v\n%s\n%s", err, out, cmds)
	}
	if out, err := frr.Cmd(ctx, "clear bgp * soft in"); err != nil {
		t.Fatalf("clear bgp: %v %s", err, out)
	}
	fltWaitHolds(t, ctx, frr, want2, "after the incremental commands")
	// The running configuration now holds the new file's lists (FRR adds
	// sequence numbers; the sets must be equal).
	running, err := frr.Cmd(ctx, "show running-config")
	if err != nil {
		t.Fatal(err)
	}
	newFile, err := filters.Render(in2, filters.RenderOptions{Vendor: "frr"})
	if err != nil {
		t.Fatal(err)
	}
	if got, exp := frrLists(running), frrLists(string(newFile)); !slices.Equal(got, exp) {
		extra, missing := fltListDiff(got, exp)
		t.Errorf("FRR lists after the incremental update differ from the new file:\nextra %v\nmissing %v", extra, missing)
	}
	// BIRD: full replace of the included file and a reconfiguration.
	fltRenderFile(t, in2, "bird", dir)
	if out, err := bird.Cmd(ctx, "configure"); err != nil || !strings.Contains(out, "Reconfigur") {
		t.Fatalf("birdc configure: %v %s", err, out)
	}
	fltWaitHolds(t, ctx, bird, want2, "after birdc configure with the new file")
}

// frrLists returns the prefix-list and as-path lines of a config, without
// FRR's sequence numbers, sorted.
func frrLists(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if !(strings.HasPrefix(l, "ip prefix-list ") || strings.HasPrefix(l, "ipv6 prefix-list ") || strings.HasPrefix(l, "bgp as-path access-list ")) {
			continue
		}
		f := strings.Fields(l)
		var kept []string
		for i := 0; i < len(f); i++ {
			if f[i] == "seq" && i+1 < len(f) {
				i++
				continue
			}
			kept = append(kept, f[i])
		}
		out = append(out, strings.Join(kept, " "))
	}
	sort.Strings(out)
	return out
}
