package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// writeSnapshotFile writes a Snapshot JSON atomically (the daemon reads it
// at every run).
func writeSnapshotFile(t *testing.T, path string, s *asn.Snapshot) {
	t.Helper()
	f, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Encode(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// dropPrefixes removes n prefixes of a target (a small registry change,
// under the guard's limits).
func dropPrefixes(s *asn.Snapshot, target string, n int) *asn.Snapshot {
	t := s.Target(target)
	t.Prefixes = t.Prefixes[n:]
	return s
}

// TestDaemonCrashKeepsRoutes: kill -9 of the daemon is invisible to
// routers. BIRD and FRR (graceful-restart helpers, as they are by default)
// log every route they import from asfence. After each restart their own
// logs must show every route of the applied set received again as the
// same route, and none removed, withdrawn or added anew; the restarted
// daemon's OPEN carried the Restart State bit and the Forwarding State bit
// for IPv4 and IPv6 (as each peer decoded it), where a fresh start's OPEN
// claims neither. A change held for approval is not announced across a
// crash; once approved, it is what the next restart announces. The
// history keeps every run completed before each crash.
func TestDaemonCrashKeepsRoutes(t *testing.T) {
	l := newDaemonLabWith(t, "@every 1h", "", daemonLabOptions{frr: true, debug: true})
	snap := filepath.Join(l.dir, "snapshot.json")
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	writeSnapshotFile(t, snap, s)
	l.start("--snapshot", snap)
	first := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 })
	if first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	l.holds(l.applied())
	// A fresh start (no state) claims no preserved routes.
	l.restartFlags(false)

	// A small change is applied (as a delta) before the crash.
	s, _ = asn.Embedded()
	writeSnapshotFile(t, snap, dropPrefixes(s, "bytedance", 3))
	second := l.triggerRun()
	if second.Outcome != store.Applied || second.Diff.Removed == 0 {
		t.Fatalf("second run: %+v", second)
	}
	want := l.applied()
	l.holds(want)
	// A large change is held: the applied set stays in force.
	s, _ = asn.Embedded()
	tencent := len(s.Target("tencent").Prefixes)
	writeSnapshotFile(t, snap, dropPrefixes(dropPrefixes(s, "bytedance", 3), "tencent", tencent/2))
	held := l.triggerRun()
	if held.Outcome != store.Held {
		t.Fatalf("run %d (half of tencent gone): %+v", held.ID, held)
	}
	l.holds(want)
	before, err := l.client.Runs(context.Background(), store.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	// Crash with a held change: the peers keep exactly the applied set.
	after := l.crash(want, "--snapshot", snap)
	if after.Outcome != store.Held {
		t.Fatalf("run after the restart: %+v", after)
	}
	// History: every run completed before the crash is there, unchanged.
	got, err := l.client.Runs(context.Background(), store.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint64]*store.Run{}
	for _, x := range got {
		byID[x.ID] = x
	}
	for _, b := range before {
		g := byID[b.ID]
		if g == nil || g.Outcome != b.Outcome || !g.End.Equal(b.End) {
			t.Errorf("run %d before the crash: %+v, after: %+v", b.ID, b, g)
		}
	}

	// Approved, the held set is applied; the next crash keeps it.
	if out, err := l.cli("approve", fmt.Sprint(after.ID)); err != nil || !strings.Contains(out, "approved and applied") {
		t.Fatalf("asfence approve: %v\n%s", err, out)
	}
	approved := l.applied()
	if intentSize(approved) >= intentSize(want) {
		t.Fatalf("approved set: %d prefixes, the held change removes from %d", intentSize(approved), intentSize(want))
	}
	l.holds(approved)
	if again := l.crash(approved, "--snapshot", snap); again.Outcome != store.Unchanged {
		t.Fatalf("run after the second restart: %+v", again)
	}
	// The CLI reads the same history through the running daemon.
	out, err := exec.Command(l.bin, "history", "--config", l.cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied") {
		t.Fatalf("asfence history: %v\n%s", err, out)
	}
}

// crash kills the daemon (SIGKILL), starts it again with flags and waits
// for its startup run (returned). Meanwhile each peer must have kept
// every route of want: its own log shows, from the kill on, each route of
// want received again unchanged (BIRD: "ignored", FRR: "duplicate") and
// nothing else, and the new session's OPEN carried the restart flags.
func (l *daemonLab) crash(want *policy.Intent, flags ...string) *store.Run {
	t := l.t
	t.Helper()
	ctx := context.Background()
	marks := map[string]int{}
	for _, p := range l.peers() {
		marks[p.Name()] = len(p.Log())
	}
	rs, err := l.client.Runs(ctx, store.ListOptions{Limit: 1})
	if err != nil || len(rs) == 0 {
		t.Fatalf("runs before the crash: %v", err)
	}
	last := rs[0].ID
	l.proc.kill9()
	l.start(flags...)
	after := l.waitRun("startup after the crash", 60*time.Second, func(x *store.Run) bool {
		return x.ID > last && x.Trigger == "startup"
	})
	// Each peer ends graceful restart at asfence's End-of-RIB: then any
	// route it was not sent again is gone.
	done := map[string][]string{
		"bird": {"Neighbor graceful restart done"},
		"frr": {"rcvd End-of-RIB for IPv4 Unicast from " + l.addr.String(),
			"rcvd End-of-RIB for IPv6 Unicast from " + l.addr.String()},
	}
	for _, p := range l.peers() {
		err := lab.Eventually(ctx, 60*time.Second, func(context.Context) error {
			log := p.Log()[marks[p.Name()]:]
			for _, s := range done[p.Name()] {
				if !strings.Contains(log, s) {
					return fmt.Errorf("%s: no %q in its log since the crash", p.Name(), s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	l.holds(want)
	l.restartFlags(true)
	keep := map[lab.Family]map[netip.Prefix]bool{lab.IPv4Unicast: {}, lab.IPv6Unicast: {}}
	for _, tg := range want.Targets {
		for _, p := range tg.Prefixes {
			f := lab.IPv4Unicast
			if p.Prefix.Addr().Is6() {
				f = lab.IPv6Unicast
			}
			keep[f][p.Prefix] = true
		}
	}
	same := map[string]string{"bird": "ignored", "frr": "duplicate"}
	for _, p := range l.peers() {
		var evs []lab.RouteEvent
		switch d := p.(type) {
		case *lab.BIRD:
			evs, err = d.RouteEvents(d.Log()[marks["bird"]:], l.addr)
		case *lab.FRR:
			evs, err = d.RouteEvents(d.Log()[marks["frr"]:], l.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		seen := map[lab.Family]map[netip.Prefix]bool{lab.IPv4Unicast: {}, lab.IPv6Unicast: {}}
		bad := 0
		for _, ev := range evs {
			seen[ev.Family][ev.Prefix] = true
			if keep[ev.Family][ev.Prefix] && ev.Action == same[p.Name()] {
				continue
			}
			if bad++; bad <= 10 {
				t.Errorf("%s logged after the crash: %s", p.Name(), ev.Line)
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d routes changed across the crash (of %d events)", p.Name(), bad, len(evs))
			continue
		}
		for f, ps := range keep {
			if n := len(seen[f]); n < len(ps) {
				t.Errorf("%s: %d of %d %s routes were received again after the crash", p.Name(), n, len(ps), f)
			}
		}
		t.Logf("%s: %d route events since the crash, every one %q", p.Name(), len(evs), same[p.Name()])
	}
	if t.Failed() {
		t.FailNow()
	}
	return after
}

// restartFlags checks the graceful-restart capability each peer got in
// the daemon's last OPEN: with restarted, the Restart State bit and the
// Forwarding State bit for IPv4 and IPv6; without, neither.
func (l *daemonLab) restartFlags(restarted bool) {
	l.t.Helper()
	ctx := context.Background()
	want := lab.GracefulRestart{Advertised: true}
	if restarted {
		want = lab.GracefulRestart{Advertised: true, Restarting: true, Preserved: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}}
	}
	for _, p := range l.peers() {
		var gr lab.GracefulRestart
		var err error
		switch d := p.(type) {
		case *lab.BIRD:
			gr, err = d.NeighborGR(ctx, l.addr)
		case *lab.FRR:
			gr, err = d.NeighborGR(ctx, l.addr)
		}
		if err != nil {
			l.t.Fatal(err)
		}
		if gr.Advertised != want.Advertised || gr.Restarting != want.Restarting || !slices.Equal(gr.Preserved, want.Preserved) {
			l.t.Errorf("%s decoded the daemon's graceful restart capability as %+v, want %+v", p.Name(), gr, want)
		}
	}
}
