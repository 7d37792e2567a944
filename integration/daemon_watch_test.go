package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// watchLab is a daemon lab with live routing: an upstream (a GoBGP
// feeder in AS174) announces routes to a router, which passes them to
// asfence: a BIRD route reflector exporting its table to a feed neighbor,
// or (watchOptions.router) a router reporting over BMP. The lab's other
// BIRD takes asfence's RTBH routes.
type watchLab struct {
	*daemonLab
	router   lab.Peer
	rr       *lab.BIRD // the route reflector (feed mode)
	upstream *lab.Feeder
	// ref, when asked for, is a BIRD taking the RR's routes directly: the
	// same announcement without asfence (the latency reference).
	ref *lab.BIRD
}

// watchOptions: ref adds the reference BIRD (feed mode); router, if set,
// starts a router that takes the upstream's session (passive, from
// upstream) and reports over BMP to station, instead of the feed.
type watchOptions struct {
	ref    bool
	router func(t *testing.T, upstream netip.Addr, station netip.AddrPort) lab.Peer
}

const upstreamASN = 174

func newWatchLab(t *testing.T, watchYAML string, o watchOptions) *watchLab {
	t.Helper()
	lab.Short(t)
	fa := lab.Loopback(t)
	w := &watchLab{}
	w.daemonLab = newDaemonLabWith(t, "@every 1h", "", daemonLabOptions{})
	var add strings.Builder
	if o.router != nil {
		port := lab.FreePort(t, w.addr)
		w.router = o.router(t, fa, netip.AddrPortFrom(w.addr, uint16(port)))
		fmt.Fprintf(&add, "bmp:\n  listen: %s:%d\n", w.addr, port)
	} else {
		var refAddr netip.Addr
		var refPort int
		sessions := []lab.Session{
			{Addr: w.addr, ASN: speakerASN, Passive: true, Export: "all", Description: "asfence",
				Families: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}},
			{Addr: fa, ASN: upstreamASN, Passive: true, Description: "upstream",
				Families: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}},
		}
		if o.ref {
			refAddr = lab.Loopback(t)
			refPort = lab.FreePort(t, refAddr)
			sessions = append(sessions, lab.Session{Addr: refAddr, Port: refPort, ASN: speakerASN, Export: "all", Description: "reference",
				Families: []lab.Family{lab.IPv4Unicast}})
		}
		w.rr = lab.StartBIRD(t, lab.Config{ASN: speakerASN, Extra: lab.BIRDDiscardStatics, Sessions: sessions})
		w.router = w.rr
		if o.ref {
			w.ref = lab.StartBIRD(t, lab.Config{Addr: refAddr, Port: refPort, ASN: speakerASN, Extra: lab.BIRDDiscardStatics,
				Sessions: []lab.Session{{Addr: w.rr.Addr(), Port: w.rr.Port(), ASN: speakerASN, Passive: true, Families: []lab.Family{lab.IPv4Unicast}}}})
		}
		fmt.Fprintf(&add, `    - address: %s
      port: %d
      asn: %d
      local_address: %s
      families: [ipv4, ipv6]
      connect_retry: 1
      description: rr
      feed: true
`, w.rr.Addr(), w.rr.Port(), speakerASN, w.addr)
	}
	w.upstream = lab.NewFeeder(t, lab.Config{Addr: fa, ASN: upstreamASN, Sessions: []lab.Session{
		{Addr: w.router.Addr(), Port: w.router.Port(), ASN: routerASN(w), Families: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}}}})
	add.WriteString(watchYAML)
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfgPath, append(cfg, add.String()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// bmpRouterASN is the AS of a router reporting over BMP.
const bmpRouterASN = 65010

func routerASN(w *watchLab) uint32 {
	if w.rr != nil {
		return speakerASN
	}
	return bmpRouterASN
}

// rtbh reports whether the RTBH BIRD holds p.
func (w *watchLab) rtbh(ctx context.Context, p netip.Prefix) (bool, error) {
	return birdHolds(ctx, w.bird, p)
}

// birdHolds reports whether a BIRD holds a route for p (birdc show route
// for the prefix: cheap, whatever the table size).
func birdHolds(ctx context.Context, b *lab.BIRD, p netip.Prefix) (bool, error) {
	out, err := b.Cmd(ctx, "show", "route", p.String())
	if strings.Contains(out, "Network not found") {
		return false, nil // birdc exits 1 with it
	}
	if err != nil {
		return false, err
	}
	return strings.Contains(out, p.String()), nil
}

// announce makes the upstream announce prefixes with an AS path (the
// upstream's own AS comes first on the wire).
func (w *watchLab) announce(t *testing.T, path []uint32, ps ...netip.Prefix) {
	t.Helper()
	var rs []lab.Route
	for _, p := range ps {
		f := lab.IPv4Unicast
		if p.Addr().Is6() {
			f = lab.IPv6Unicast
		}
		rs = append(rs, lab.Route{Family: f, Prefix: p, ASPath: path})
	}
	if err := w.upstream.Announce(context.Background(), rs...); err != nil {
		t.Fatal(err)
	}
}

func inIntent(in *policy.Intent, p netip.Prefix) bool {
	for _, t := range in.Targets {
		for _, x := range t.Prefixes {
			if x.Prefix == p {
				return true
			}
		}
	}
	return false
}

// watchScenario is the proof against one way of seeing routes: a new
// prefix originated by a target ASN (IPv4 and IPv6) reaches the RTBH BIRD
// within 5 s of the upstream's announcement, with evidence from source, in
// a run with trigger watch; a prefix of another origin and one with the
// target ASN only in transit never; a withdrawal unblocks nothing (and a
// run in between keeps the prefix); a burst of 150 new target routes beyond
// watch.max_additions 100 is held whole and applied on approval. sightings
// is how many routes the source reports per prefix (BMP views with their
// own peer, such as a Loc-RIB, count apart). It returns the watch run.
func (w *watchLab) scenario(t *testing.T, source string, sightings int, check func(*store.Run, *api.RunDetail)) {
	t.Helper()
	ctx := context.Background()
	w.start("--offline")
	first := w.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 })
	if first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	old := w.applied()
	w.holds(old)
	lab.WaitEstablished(t, ctx, w.router, w.upstream.Addr(), 60*time.Second)
	if w.rr != nil {
		lab.WaitEstablished(t, ctx, w.rr, w.addr, 60*time.Second)
	} else {
		err := lab.Eventually(ctx, 60*time.Second, func(ctx context.Context) error {
			var st api.BMP
			if err := apiGet(w.client.Base+"/api/v1/bmp", &st); err != nil {
				return err
			}
			for _, r := range st.Routers {
				if "bmp:"+r.Address == source && r.State == "up" && r.Peers > 0 {
					return nil
				}
			}
			return fmt.Errorf("the router is not up over BMP: %+v", st.Routers)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	target4, target6 := netip.MustParsePrefix("20.1.0.0/24"), netip.MustParsePrefix("2a0c:9a40:8000::/40")
	other, transit := netip.MustParsePrefix("20.2.0.0/24"), netip.MustParsePrefix("20.3.0.0/24")
	for _, p := range []netip.Prefix{target4, target6, other, transit} {
		if inIntent(old, p) {
			t.Fatalf("%s is already in the embedded set: pick another test prefix", p)
		}
	}
	w.announce(t, []uint32{3356}, other)
	w.announce(t, []uint32{396986, 3356}, transit)
	w.announce(t, []uint32{396986}, target4)
	w.announce(t, []uint32{6939, 45090}, target6)
	err := lab.Eventually(ctx, 5*time.Second, func(ctx context.Context) error {
		for _, p := range []netip.Prefix{target4, target6} {
			if ok, err := w.rtbh(ctx, p); err != nil || !ok {
				return fmt.Errorf("the RTBH BIRD does not hold %s (%v)", p, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("within 5 s of the announcement: %v", err)
	}
	run := w.waitRun("watch", 10*time.Second, func(r *store.Run) bool { return r.Trigger == "watch" })
	if run.Outcome != store.Applied || run.Diff.Added != 2 || run.Diff.Removed != 0 || len(run.Outputs) == 0 {
		t.Fatalf("watch run: %+v", run)
	}
	_, detail, err := w.client.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range detail.Change.Targets {
		for _, p := range tc.Added {
			if len(p.Evidence) != sightings || slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source != source }) {
				t.Errorf("%s %s: evidence %+v, want %d from %s", tc.Target, p.Prefix, p.Evidence, sightings, source)
			}
		}
	}
	if check != nil {
		check(run, detail)
	}
	// The vendor files were rewritten with the new prefix.
	if b, err := os.ReadFile(filepath.Join(w.dir, "out", "asfence-bird.conf")); err != nil || !strings.Contains(string(b), "20.1.0.0/24") {
		t.Errorf("the BIRD vendor file lacks 20.1.0.0/24 (%v)", err)
	}
	// The watch counts the batch once the daemon has returned it.
	err = lab.Eventually(ctx, 10*time.Second, func(context.Context) error {
		var st api.BMP
		if err := apiGet(w.client.Base+"/api/v1/bmp", &st); err != nil || !st.Watch.On || st.Watch.Applied != 2 ||
			st.Watch.WindowUsed != 2 || st.Watch.MaxAdditions != 100 || st.Watch.LastRun != run.ID {
			return fmt.Errorf("/api/v1/bmp: %+v (%v)", st, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// The other origin and the transit-only route: followed by no one,
	// applied never.
	routes := func(n int) error {
		want := fmt.Sprintf("asfence_watch_routes %d", n)
		if line := daemonMetric(w.metrics(), "asfence_watch_routes "); line != want {
			return fmt.Errorf("metric %q, want %q (the watch follows only the target-originated routes)", line, want)
		}
		return nil
	}
	if err := lab.Eventually(ctx, 10*time.Second, func(context.Context) error { return routes(2 * sightings) }); err != nil {
		t.Error(err)
	}
	for _, p := range []netip.Prefix{other, transit} {
		if ok, err := w.rtbh(ctx, p); err != nil || ok || inIntent(w.applied(), p) {
			t.Errorf("%s is blocked (%v)", p, err)
		}
	}

	// Withdrawn upstream: still blocked, also after a (non-scheduled) run.
	if err := w.upstream.Withdraw(ctx, lab.Route{Family: lab.IPv4Unicast, Prefix: target4}); err != nil {
		t.Fatal(err)
	}
	if err := lab.Eventually(ctx, 30*time.Second, func(context.Context) error { return routes(sightings) }); err != nil {
		t.Fatal(err)
	}
	if r := w.triggerRun(); r.Outcome != store.Unchanged {
		t.Fatalf("run after the withdrawal: %+v", r)
	}
	if ok, err := w.rtbh(ctx, target4); err != nil || !ok || !inIntent(w.applied(), target4) {
		t.Fatalf("withdrawn upstream, %s is no longer blocked (%v)", target4, err)
	}

	// A burst of 150: beyond max_additions (100 per hour, 2 used), held.
	var burst []netip.Prefix
	for i := range 150 {
		burst = append(burst, netip.PrefixFrom(netip.AddrFrom4([4]byte{20, 10, byte(i), 0}), 24))
	}
	w.announce(t, []uint32{396986}, burst...)
	held := w.waitRun("held watch", 30*time.Second, func(r *store.Run) bool { return r.Trigger == "watch" && r.Outcome == store.Held })
	if held.Diff.Added != 150 || len(held.Guard) != 1 || !strings.Contains(held.Guard[0], "watch.max_additions 100") {
		t.Fatalf("held run: %+v", held)
	}
	applied := w.applied()
	if intentSize(applied) != intentSize(old)+2 {
		t.Fatalf("while held: %d prefixes applied, want %d", intentSize(applied), intentSize(old)+2)
	}
	w.holds(applied)
	if out, err := w.cli("approve", fmt.Sprint(held.ID)); err != nil || !strings.Contains(out, "approved and applied") {
		t.Fatalf("asfence approve: %v\n%s", err, out)
	}
	final := w.applied()
	if intentSize(final) != intentSize(old)+152 || !inIntent(final, burst[149]) {
		t.Fatalf("approved: %d prefixes, want %d", intentSize(final), intentSize(old)+152)
	}
	w.holds(final)
}

// watchYAML is the scenario's config: the BIRD vendor file and the guard.
const watchYAML = "outputs:\n  vendors: [bird]\nwatch:\n  max_additions: 100\n  window: 1h\n"

// TestWatchFeed: the scenario with a BIRD route reflector sending asfence
// its table as a feed neighbor; the evidence names the feed, its AS and the
// AS path as the upstream sent it.
func TestWatchFeed(t *testing.T) {
	w := newWatchLab(t, watchYAML, watchOptions{})
	w.scenario(t, "feed:"+w.rr.Addr().String(), 1, func(_ *store.Run, detail *api.RunDetail) {
		var evidence []string
		for _, tc := range detail.Change.Targets {
			for _, p := range tc.Added {
				for _, e := range p.Evidence {
					evidence = append(evidence, fmt.Sprintf("%s %s %s", tc.Target, p.Prefix, e.Detail))
				}
			}
		}
		slices.Sort(evidence)
		want := []string{
			fmt.Sprintf("bytedance 20.1.0.0/24 originated by AS396986: peer %s (AS%d), AS path 174 396986", w.rr.Addr(), speakerASN),
			fmt.Sprintf("tencent 2a0c:9a40:8000::/40 originated by AS45090: peer %s (AS%d), AS path 174 6939 45090", w.rr.Addr(), speakerASN),
		}
		if !slices.Equal(evidence, want) {
			t.Errorf("evidence:\n%s\nwant:\n%s", strings.Join(evidence, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestWatchBMP: the scenario with routers reporting to asfence's BMP
// receiver (bmp.listen): FRR's bmp module (pre- and post-policy) and
// gobgpd's BMP client (pre-, post-policy and its Loc-RIB, RFC 9069, which
// the watch counts as a peer of its own), each taking the upstream's
// routes over eBGP. Both connect from 127.0.0.1, so they run one at a
// time.
func TestWatchBMP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sightings int
		start     func(t *testing.T, upstream netip.Addr, station netip.AddrPort) lab.Peer
	}{
		{"frr", 1, func(t *testing.T, upstream netip.Addr, station netip.AddrPort) lab.Peer {
			lab.Require(t, lab.FRRBgpd, "vtysh")
			return lab.StartFRR(t, lab.Config{ASN: bmpRouterASN,
				Sessions: []lab.Session{{Addr: upstream, ASN: upstreamASN, Passive: true}},
				BMP:      []lab.BMPStation{{Addr: station, Policy: "both"}}})
		}},
		{"gobgpd", 2, func(t *testing.T, upstream netip.Addr, station netip.AddrPort) lab.Peer {
			lab.Require(t, "gobgpd", "gobgp")
			return lab.StartGoBGPd(t, lab.Config{ASN: bmpRouterASN,
				Sessions: []lab.Session{{Addr: upstream, ASN: upstreamASN, Passive: true}},
				BMP:      []lab.BMPStation{{Addr: station, Policy: "all", Name: "lab-gobgpd"}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatchLab(t, watchYAML, watchOptions{router: tc.start})
			// Routers on 127.0.0.0/8 reach the receiver from 127.0.0.1.
			w.scenario(t, "bmp:127.0.0.1", tc.sightings, nil)
			m := w.metrics()
			if line := daemonMetric(m, `asfence_bmp_router_up{`); !strings.HasSuffix(line, " 1") || !strings.Contains(line, `router="127.0.0.1"`) {
				t.Errorf("metric asfence_bmp_router_up: %q", line)
			}
			out, err := w.cli("peers")
			if err != nil || !strings.Contains(out, "BMP routers") || !strings.Contains(out, "127.0.0.1") || !strings.Contains(out, " up ") {
				t.Errorf("asfence peers: %v\n%s", err, out)
			}
		})
	}
}
