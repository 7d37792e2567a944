package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/store"
)

// cliDeadline bounds the waits of the daemon command tests against a hang:
// under -race on a busy machine a run takes over 30 s.
const cliDeadline = 3 * time.Minute

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeSnap(t *testing.T, path string, halveTencent bool) {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if halveTencent {
		tc := s.Target("tencent")
		tc.Prefixes = tc.Prefixes[:len(tc.Prefixes)/2]
	}
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonCommands drives `asfence run` in-process and the client
// commands against it: through the API while it runs, through the store
// once it has stopped.
func TestDaemonCommands(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.json")
	writeSnap(t, snap, false)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	cfg := filepath.Join(dir, "asfence.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("schedule: \"@every 1h\"\nstate_dir: %s\napi:\n  listen: %s\nlog:\n  format: json\n", filepath.Join(dir, "state"), listen)), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runErr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", cfg, "--snapshot", snap}, &bytes.Buffer{}, &runErr)
	}()

	history := func() []*store.Run {
		t.Helper()
		code, out, stderr := runCLI(t, "history", "--config", cfg, "--format", "json")
		if code != 0 {
			t.Fatalf("history: exit %d: %s", code, stderr)
		}
		var v struct{ Runs []*store.Run }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		return v.Runs
	}
	waitFor := func(id uint64) *store.Run {
		t.Helper()
		for deadline := time.Now().Add(cliDeadline); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case code := <-done:
				t.Fatalf("asfence run exited %d: %s", code, runErr.String())
			default:
			}
			code, out, _ := runCLI(t, "history", "--config", cfg, "--format", "json")
			if code != 0 {
				continue // the API is not up yet
			}
			var v struct{ Runs []*store.Run }
			json.Unmarshal([]byte(out), &v)
			for _, r := range v.Runs {
				if r.ID == id && r.Outcome != store.Running {
					return r
				}
			}
		}
		t.Fatalf("run %d did not finish", id)
		return nil
	}
	if r := waitFor(1); r.Outcome != store.Applied {
		t.Fatalf("run 1: %+v", r)
	}
	writeSnap(t, snap, true)
	code, out, stderr := runCLI(t, "trigger", "--wait", "--config", cfg)
	if code != 0 || !strings.HasPrefix(out, "run 2 held (+0 -") {
		t.Fatalf("trigger --wait: exit %d: %s%s", code, out, stderr)
	}
	if r := waitFor(2); r.Outcome != store.Held {
		t.Fatalf("run 2: %+v", r)
	}
	code, out, _ = runCLI(t, "show", "2", "--config", cfg)
	if code != 0 || !strings.Contains(out, "run 2 (api): held") || !strings.Contains(out, "WAITING FOR APPROVAL") || !strings.Contains(out, "  - ") {
		t.Fatalf("show (API): exit %d\n%s", code, out)
	}
	// The whole change, page by page through the API: every removed
	// prefix in the text, and in the JSON (the shape show always printed).
	held := waitFor(2)
	apiJSON := showAll(t, held, "--config", cfg)
	code, out, _ = runCLI(t, "peers", "--config", cfg)
	if code != 0 || !strings.Contains(out, "no BGP neighbors") {
		t.Fatalf("peers: exit %d\n%s", code, out)
	}

	cancel() // SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("asfence run exit %d: %s", code, runErr.String())
		}
	case <-time.After(cliDeadline):
		t.Fatal("asfence run did not stop")
	}
	if !strings.Contains(runErr.String(), `"msg":"run applied"`) || !strings.Contains(runErr.String(), "run held for approval") {
		t.Fatalf("summary lines missing from the log:\n%s", runErr.String())
	}

	// The daemon is down: the commands read and decide in the store.
	if rs := history(); len(rs) != 2 || rs[0].Outcome != store.Held {
		t.Fatalf("history from the store: %+v", rs)
	}
	code, out, _ = runCLI(t, "history", "--config", cfg)
	if code != 0 || !strings.Contains(out, "WAITING FOR APPROVAL") || !strings.Contains(out, "tencent: would withdraw") {
		t.Fatalf("history text: exit %d\n%s", code, out)
	}
	if storeJSON := showAll(t, held, "--state-dir", filepath.Join(dir, "state")); storeJSON != apiJSON {
		t.Errorf("show --format json differs between the API and the store")
	}
	code, out, stderr = runCLI(t, "approve", "2", "--config", cfg)
	if code != 0 || !strings.Contains(out, "approved: the daemon announces it at its next start") {
		t.Fatalf("offline approve: exit %d\n%s%s", code, out, stderr)
	}
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := st.Applied()
	st.Close()
	if err != nil || applied == nil || applied.RunID != 2 {
		t.Fatalf("applied after offline approval: %+v %v", applied, err)
	}
	code, _, stderr = runCLI(t, "reject", "2", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "already approved") {
		t.Fatalf("reject of an approved run: exit %d %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "show", "99", "--state-dir", filepath.Join(dir, "state"))
	if code != 1 || !strings.Contains(stderr, "run 99: not found") {
		t.Fatalf("show 99: exit %d %s", code, stderr)
	}
	for _, args := range [][]string{
		{"show", "abc", "--config", cfg},
		{"approve", "0", "--config", cfg},
		{"history", "--config", cfg, "--outcome", "great"},
		{"history", "--config", cfg, "--format", "yaml"},
		{"run"},
	} {
		if code, _, stderr := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "history", "--state-dir", filepath.Join(dir, "nothing-here")); code != 1 || !strings.Contains(stderr, "no state store") {
		t.Errorf("history of an empty dir: exit %d %s", code, stderr)
	}
}

// TestTriggerWaitFailsWhenOutputsAreNotWritten: a run whose vendor files
// could not be written is exit 1 for trigger --wait, with the reason.
func TestTriggerWaitFailsWhenOutputsAreNotWritten(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.json")
	writeSnap(t, snap, false)
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, []byte("a file where output_dir's parent should be\n"), 0o644)
	listen := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	cfg := filepath.Join(dir, "asfence.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("schedule: \"@every 1h\"\nstate_dir: %s\noutput_dir: %s\noutputs:\n  vendors: [bird]\napi:\n  listen: %s\nlog:\n  format: json\n",
		filepath.Join(dir, "state"), filepath.Join(blocker, "out"), listen)), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	var runErr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", cfg, "--snapshot", snap}, &bytes.Buffer{}, &runErr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(cliDeadline):
			t.Error("asfence run did not stop")
		}
	}()
	var code int
	var out, stderr string
	for deadline := time.Now().Add(cliDeadline); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, out, stderr = runCLI(t, "trigger", "--wait", "--config", cfg)
		if strings.Contains(out, "vendor files not written") {
			break
		}
	}
	if code != 1 || !strings.Contains(out, "not a directory") {
		t.Fatalf("trigger --wait: exit %d\n%s%s", code, out, stderr)
	}
	os.Remove(blocker)
	code, out, stderr = runCLI(t, "trigger", "--wait", "--config", cfg)
	if code != 0 || !strings.Contains(out, " unchanged ") {
		t.Fatalf("trigger --wait once output_dir can be written: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(blocker, "out", "asfence-bird.conf")); err != nil {
		t.Fatal(err)
	}
}

// showAll checks that `show RUN --max-prefixes 0` lists every prefix the
// run removed and that `show RUN --format json` carries all of them, and
// returns the JSON.
func showAll(t *testing.T, r *store.Run, where ...string) string {
	t.Helper()
	id := fmt.Sprint(r.ID)
	code, out, stderr := runCLI(t, append([]string{"show", id, "--max-prefixes", "0"}, where...)...)
	if n := strings.Count(out, "\n  - "); code != 0 || n != r.Diff.Removed || r.Diff.Removed < 1000 || strings.Contains(out, "more (asfence show") {
		t.Fatalf("show %s --max-prefixes 0 %v: exit %d, %d removed prefixes listed, want %d: %s", id, where, code, n, r.Diff.Removed, stderr)
	}
	code, out, stderr = runCLI(t, append([]string{"show", id}, where...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("  - ... %d more (asfence show %s --max-prefixes 0)", r.Diff.Removed-200, id)) {
		t.Fatalf("show %s %v: exit %d: %s", id, where, code, stderr)
	}
	code, out, stderr = runCLI(t, append([]string{"show", id, "--format", "json"}, where...)...)
	var v struct {
		Run    *store.Run
		Detail *store.Detail
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Run == nil || v.Detail == nil {
		t.Fatalf("show %s --format json %v: exit %d, %v: %s", id, where, code, err, stderr)
	}
	removed := 0
	for _, tc := range v.Detail.Change.Targets {
		removed += len(tc.Removed)
		for _, p := range tc.Removed {
			if len(p.Evidence) == 0 {
				t.Fatalf("show --format json: %s without evidence", p.Prefix)
			}
		}
	}
	if removed != r.Diff.Removed {
		t.Fatalf("show %s --format json %v: %d removed prefixes, want %d", id, where, removed, r.Diff.Removed)
	}
	return out
}
