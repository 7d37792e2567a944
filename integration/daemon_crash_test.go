package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/store"
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

// TestDaemonCrashKeepsRoutes: kill -9 of the daemon, with graceful restart
// on both sides, never makes BIRD drop a route; after the restart BIRD
// holds exactly the applied set, and the history has every run completed
// before the crash.
func TestDaemonCrashKeepsRoutes(t *testing.T) {
	l := newDaemonLab(t, "@every 1h", "")
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

	// A small change is applied (as a delta) before the crash.
	s, _ = asn.Embedded()
	writeSnapshotFile(t, snap, dropPrefixes(s, "bytedance", 3))
	r, err := l.client.Trigger(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	second := l.waitRun("second", 60*time.Second, func(x *store.Run) bool { return x.ID == r.ID })
	if second.Outcome != store.Applied || second.Diff.Removed == 0 {
		t.Fatalf("second run: %+v", second)
	}
	want := l.applied()
	l.holds(want)
	n := intentSize(want)
	before, _ := l.client.Runs(context.Background(), store.ListOptions{Limit: 100})

	watch := l.watchCount()
	l.proc.kill9()
	// BIRD keeps the routes as stale (graceful restart) while asfence is
	// down; the restarted daemon announces the stored set before any
	// resolve and the session comes back with the same routes.
	l.start("--snapshot", snap)
	l.holds(want)
	// The startup run of the new process finishes unchanged.
	after := l.waitRun("startup after crash", 60*time.Second, func(x *store.Run) bool {
		return x.ID > r.ID && x.Trigger == "startup"
	})
	if after.Outcome != store.Unchanged {
		t.Fatalf("run after restart: %+v", after)
	}
	l.holds(want)
	low, samples := watch()
	if samples < 5 {
		t.Fatalf("only %d samples of BIRD's route count", samples)
	}
	if low < n {
		t.Fatalf("BIRD's route count dipped to %d (set: %d) across the crash", low, n)
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
	// The CLI reads the same history through the running daemon.
	out, err := exec.Command(l.bin, "history", "--config", l.cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied") {
		t.Fatalf("asfence history: %v\n%s", err, out)
	}
}
