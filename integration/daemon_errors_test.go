package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/internal/store"
)

// TestDaemonStartErrorsKeepRoutes: a bad config (exit 2) and a damaged
// state store (exit 1) stop asfence with a clear error before it touches
// BGP, even when restarted over and over; BIRD keeps the routes it holds
// (graceful restart) and the daemon, once fixed, comes back with them.
func TestDaemonStartErrorsKeepRoutes(t *testing.T) {
	l := newDaemonLab(t, "@every 1h", "")
	l.start("--offline")
	if r := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 }); r.Outcome != store.Applied {
		t.Fatalf("first run: %+v", r)
	}
	want := l.applied()
	l.holds(want)
	n := intentSize(want)
	watch := l.watchCount()

	// SIGTERM: a clean stop, the routes stay on the peer.
	l.proc.signal(syscall.SIGTERM)
	if code := l.proc.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("exit status after SIGTERM: %d", code)
	}
	logText, _ := os.ReadFile(l.proc.log)
	if !strings.Contains(string(logText), "stopped gracefully") {
		t.Errorf("no graceful stop in the log:\n%s", logText)
	}

	dbPath := filepath.Join(l.dir, "state", store.FileName)
	good, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Repeat([]byte("\xde\xad\xbe\xef not a state store "), 1024)
	if err := os.WriteFile(dbPath, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	// As a service manager restarting it would: every start fails the
	// same way, fast, and changes nothing.
	for i := 0; i < 3; i++ {
		p := startProc(t, l.bin, filepath.Join(l.dir, "corrupt.log"), "run", "--config", l.cfgPath, "--offline")
		if code := p.exitCode(30 * time.Second); code != 1 {
			t.Fatalf("start %d with a damaged store: exit %d", i, code)
		}
	}
	msg, _ := os.ReadFile(filepath.Join(l.dir, "corrupt.log"))
	if !strings.Contains(string(msg), dbPath) || !strings.Contains(string(msg), "corrupt") {
		t.Fatalf("error does not name the damaged store:\n%s", msg)
	}
	if now, _ := os.ReadFile(dbPath); !bytes.Equal(now, damaged) {
		t.Fatal("the damaged store was modified")
	}

	// A config error: exit 2, file:line: field.
	bad := filepath.Join(l.dir, "bad.yaml")
	cfg, _ := os.ReadFile(l.cfgPath)
	os.WriteFile(bad, append(cfg, []byte("guard:\n  max_withdraw_ratio: 1.5\n")...), 0o644)
	p := startProc(t, l.bin, filepath.Join(l.dir, "badcfg.log"), "run", "--config", bad, "--offline")
	if code := p.exitCode(30 * time.Second); code != 2 {
		t.Fatalf("bad config: exit %d", code)
	}
	msg, _ = os.ReadFile(filepath.Join(l.dir, "badcfg.log"))
	lines := strings.Count(string(cfg), "\n") + 2
	if !strings.Contains(string(msg), "bad.yaml:") || !strings.Contains(string(msg), "guard.max_withdraw_ratio") ||
		!strings.Contains(string(msg), "bad.yaml:"+strconv.Itoa(lines)) {
		t.Fatalf("config error (want line %d):\n%s", lines, msg)
	}

	// Fixed: the stored set is announced again, the peer never lost it.
	if err := os.WriteFile(dbPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	l.start("--offline")
	l.holds(want)
	if r := l.waitRun("startup", 60*time.Second, func(r *store.Run) bool { return r.ID > 1 }); r.Outcome != store.Unchanged {
		t.Fatalf("run after the fix: %+v", r)
	}
	if low, samples := watch(); low < n || samples < 5 {
		t.Fatalf("BIRD's route count dipped to %d (set %d, %d samples)", low, n, samples)
	}
}
