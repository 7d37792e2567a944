package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/internal/syncbuf"
)

// testDeadline bounds each wait of these tests: generous, as the race
// detector on a busy machine makes a run ten times slower.
const testDeadline = 3 * time.Minute

// harness runs a daemon in-process that resolves from a snapshot file the
// test rewrites between runs, with its API on a free loopback port.
type harness struct {
	t       *testing.T
	dir     string
	cfgPath string
	snap    string
	d       *Daemon
	client  *api.Client
	cancel  context.CancelFunc
	done    chan error
	reload  chan struct{}
	logs    *syncbuf.Buffer
	// live resolves from the config's sources instead of the snapshot file.
	live bool
}

// halve drops every second prefix of a target (a registry that lost half).
func halve(s *asn.Snapshot, target string) *asn.Snapshot {
	t := s.Target(target)
	var keep []asn.Prefix
	for i, p := range t.Prefixes {
		if i%2 == 0 {
			keep = append(keep, p)
		}
	}
	t.Prefixes = keep
	return s
}

// small is the embedded snapshot with every target cut to its first n
// prefixes: for tests that need many runs, not the whole data.
func small(t *testing.T, n int) *asn.Snapshot {
	t.Helper()
	s := embedded(t)
	for i := range s.Targets {
		if len(s.Targets[i].Prefixes) > n {
			s.Targets[i].Prefixes = s.Targets[i].Prefixes[:n]
		}
	}
	return s
}

func embedded(t *testing.T) *asn.Snapshot {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSnapshot(t *testing.T, path string, s *asn.Snapshot) {
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

func newHarness(t *testing.T, extraConfig string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, cfgPath: filepath.Join(dir, "asfence.yaml"), snap: filepath.Join(dir, "snapshot.json"),
		reload: make(chan struct{}, 1), done: make(chan error, 1), logs: &syncbuf.Buffer{}}
	writeSnapshot(t, h.snap, embedded(t))
	cfgText := fmt.Sprintf("schedule: \"@every 1h\"\nstate_dir: %s\noutput_dir: %s\napi:\n  listen: 127.0.0.1:0\n%s",
		filepath.Join(dir, "state"), filepath.Join(dir, "out"), extraConfig)
	if err := os.WriteFile(h.cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start() {
	t := h.t
	t.Helper()
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	snap := h.snap
	if h.live {
		snap = ""
	}
	h.d, err = New(Options{Config: cfg, Snapshot: snap, Version: "test", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	started := make(chan struct{})
	go func() { h.done <- h.d.Serve(ctx, h.reload, func() { close(started) }) }()
	select {
	case <-started:
	case err := <-h.done:
		t.Fatalf("daemon stopped at start: %v", err)
	case <-time.After(testDeadline):
		t.Fatal("daemon did not start")
	}
	h.client = &api.Client{Base: "http://" + h.d.APIAddr()}
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon stopped with %v", err)
		}
	case <-time.After(testDeadline):
		h.t.Error("daemon did not stop")
	}
}

// wait polls a run until it has finished.
func (h *harness) wait(id uint64) *store.Run {
	h.t.Helper()
	deadline := time.Now().Add(testDeadline)
	for time.Now().Before(deadline) {
		r, _, err := h.client.Run(context.Background(), id)
		if err == nil && r.Outcome != store.Running {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("run %d did not finish", id)
	return nil
}

// trigger starts a run through the API and waits for it.
func (h *harness) trigger() *store.Run {
	h.t.Helper()
	r, err := h.client.Trigger(context.Background(), "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return h.wait(r.ID)
}

func (h *harness) prefixCount(target string) int {
	h.t.Helper()
	var p api.Prefixes
	h.getJSON("/api/v1/prefixes?target="+target, http.StatusOK, &p)
	return p.Count
}

func (h *harness) getJSON(path string, wantCode int, v any) {
	h.t.Helper()
	resp, err := http.Get(h.client.Base + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		h.t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, wantCode)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			h.t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

func TestStartupRunAppliesThenUnchanged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	first := h.wait(1)
	if first.Outcome != store.Applied || first.Trigger != TriggerStartup || first.Diff.Added == 0 {
		t.Fatalf("first run = %+v", first)
	}
	want := len(embedded(t).Target("tencent").Prefixes)
	if got := h.prefixCount("tencent"); got != want {
		t.Fatalf("applied tencent prefixes = %d, want %d", got, want)
	}
	second := h.trigger()
	if second.Outcome != store.Unchanged || second.Trigger != TriggerAPI {
		t.Fatalf("second run = %+v", second)
	}
	var st api.Status
	h.getJSON("/api/v1/status", http.StatusOK, &st)
	if !st.Ready || st.Applied == nil || st.Applied.RunID != 1 || st.LastRun == nil || st.LastRun.ID != 2 || st.Degraded {
		t.Fatalf("status = %+v", st)
	}
	// A restart announces run 1's set before resolving anything.
	h.stop()
	h.start()
	if a := h.d.Applied(); a == nil || len(a.Target("tencent").Prefixes) != want {
		t.Fatal("restart did not load the applied set")
	}
	if r := h.wait(3); r.Trigger != TriggerStartup || r.Outcome != store.Unchanged {
		t.Fatalf("run after restart = %+v", r)
	}
}

func TestGuardHoldsThenApproveApplies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	before := h.prefixCount("tencent")

	writeSnapshot(t, h.snap, halve(embedded(t), "tencent"))
	held := h.trigger()
	if held.Outcome != store.Held || len(held.Guard) != 1 || !strings.Contains(held.Guard[0], "tencent: would withdraw") {
		t.Fatalf("run = %+v", held)
	}
	if got := h.prefixCount("tencent"); got != before {
		t.Fatalf("held run changed the applied set: %d -> %d", before, got)
	}
	// The held diff is visible in history and through the API.
	_, d, err := h.client.Run(context.Background(), held.ID)
	if err != nil || d == nil {
		t.Fatal(err)
	}
	removed := 0
	for _, tc := range d.Change.Targets {
		if tc.Target == "tencent" {
			removed = len(tc.Removed)
		}
	}
	if removed != before/2 {
		t.Fatalf("held diff removes %d, want %d", removed, before/2)
	}
	var st api.Status
	h.getJSON("/api/v1/status", http.StatusOK, &st)
	if len(st.Held) != 1 || st.Held[0].ID != held.ID {
		t.Fatalf("status held = %+v", st.Held)
	}
	metrics := h.metrics()
	if !strings.Contains(metrics, "asfence_held_changes 1\n") || !strings.Contains(metrics, `asfence_runs_total{outcome="held"} 1`) {
		t.Fatalf("metrics do not show the held change:\n%s", grep(metrics, "asfence_"))
	}

	approved, err := h.client.Approve(context.Background(), held.ID, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if approved.Decision == nil || approved.Decision.Action != store.Approved || !strings.Contains(approved.Decision.By, "tester") {
		t.Fatalf("approved = %+v", approved.Decision)
	}
	if got := h.prefixCount("tencent"); got != before-before/2 {
		t.Fatalf("after approval tencent has %d prefixes, want %d", got, before-before/2)
	}
	if _, err := h.client.Approve(context.Background(), held.ID, "tester"); err == nil || !strings.Contains(err.Error(), "already approved") {
		t.Fatalf("second approval: %v", err)
	}
	if !strings.Contains(h.metrics(), "asfence_held_changes 0\n") {
		t.Fatal("held gauge not cleared")
	}
}

func TestGuardRejectKeepsOldAndLaterRunSupersedes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	before := h.prefixCount("tencent")
	writeSnapshot(t, h.snap, halve(embedded(t), "tencent"))
	r1 := h.trigger()
	r2 := h.trigger()
	if r1.Outcome != store.Held || r2.Outcome != store.Held {
		t.Fatalf("runs = %s, %s", r1.Outcome, r2.Outcome)
	}
	old, _, _ := h.client.Run(context.Background(), r1.ID)
	if old.Decision == nil || old.Decision.Action != store.Superseded || old.Decision.SupersededBy != r2.ID {
		t.Fatalf("first held run = %+v", old.Decision)
	}
	var se *api.StatusError
	if _, err := h.client.Approve(context.Background(), r1.ID, ""); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("approving a superseded run: %v", err)
	}
	rej, err := h.client.Reject(context.Background(), r2.ID, "tester")
	if err != nil || rej.Decision.Action != store.Rejected {
		t.Fatalf("reject: %+v %v", rej, err)
	}
	if got := h.prefixCount("tencent"); got != before {
		t.Fatalf("reject changed the applied set: %d -> %d", before, got)
	}
	// The registry recovers: the run is unchanged and nothing waits.
	writeSnapshot(t, h.snap, embedded(t))
	if r := h.trigger(); r.Outcome != store.Unchanged {
		t.Fatalf("recovered run = %+v", r)
	}
}

func TestSnapshotFailureChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	before := h.prefixCount("tencent")
	if err := os.WriteFile(h.snap, []byte(`{"generated_at": "2026-11-23T00:00:00Z", "targets": [{"name": "tencent", "prefixes": [{"prefix": "10.0.0.1/8"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := h.trigger()
	if r.Outcome != store.Failed || !strings.Contains(r.Error, "10.0.0.1/8") {
		t.Fatalf("run = %+v", r)
	}
	if got := h.prefixCount("tencent"); got != before {
		t.Fatalf("failed run changed the set: %d -> %d", before, got)
	}
	var st api.Status
	h.getJSON("/api/v1/status", http.StatusOK, &st)
	if !st.Degraded || len(st.FailedSources) != 1 || !strings.HasPrefix(st.FailedSources[0].Source, "file:") {
		t.Fatalf("status = degraded %v, failed %+v", st.Degraded, st.FailedSources)
	}
	m := h.metrics()
	for _, want := range []string{`asfence_runs_total{outcome="failed"} 1`, "asfence_degraded 1", `asfence_source_errors_total{source="file:`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "asfence_"))
		}
	}
}

// A failed run is retried before the schedule comes round: the first run
// fails (broken snapshot), the file is mended, and the retry applies.
func TestFailedRunIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "retry_after: 200ms\n")
	if err := os.WriteFile(h.snap, []byte(`{"targets": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	if r := h.wait(1); r.Outcome != store.Failed {
		t.Fatalf("run 1 = %+v", r)
	}
	writeSnapshot(t, h.snap, embedded(t))
	var r *store.Run
	for id := uint64(2); ; id++ {
		r = h.wait(id)
		if r.Trigger != TriggerRetry {
			t.Fatalf("run %d = %+v, want a retry", id, r)
		}
		if r.Outcome != store.Failed {
			break
		}
		if id > 10 {
			t.Fatal("no successful retry")
		}
	}
	if r.Outcome != store.Applied {
		t.Fatalf("retry = %+v", r)
	}
	if !strings.Contains(h.logs.String(), "retrying the failed run") {
		t.Fatalf("no retry in the log:\n%s", h.logs.String())
	}
}

func TestRetryDelayBacksOff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {6, maxRetryDelay}, {100, maxRetryDelay}} {
		if got := retryDelay(time.Minute, c.n); got != c.want {
			t.Errorf("retryDelay(1m, %d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestReloadRejectsBadConfigAndAppliesGoodOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	good, _ := os.ReadFile(h.cfgPath)
	bad := strings.Replace(string(good), "@every 1h", "61 * * * *", 1) + "guard:\n  max_withdraw_ratio: 7\n"
	if err := os.WriteFile(h.cfgPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Reload(context.Background()); err == nil {
		t.Fatal("bad config accepted")
	}
	if s := h.d.config().Schedule; s != "@every 1h" {
		t.Fatalf("schedule after rejected reload = %q", s)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "reload rejected") || !strings.Contains(logs, "asfence.yaml:") || !strings.Contains(logs, "max_withdraw_ratio") || !strings.Contains(logs, "end of range (61)") {
		t.Fatalf("rejection not logged with its place:\n%s", logs)
	}
	if err := os.WriteFile(h.cfgPath, append(good, []byte("guard:\n  max_withdraw_ratio: 0.9\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	h.reload <- struct{}{} // as SIGHUP: reload, then run
	deadline := time.Now().Add(testDeadline)
	var r *store.Run
	for time.Now().Before(deadline) {
		rs, _ := h.d.Runs(store.ListOptions{Limit: 1})
		if len(rs) == 1 && rs[0].Trigger == TriggerReload && rs[0].Outcome != store.Running {
			r = rs[0]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r == nil || r.Outcome != store.Unchanged {
		t.Fatalf("reload run = %+v", r)
	}
	// The new guard lets a 50% withdrawal through.
	writeSnapshot(t, h.snap, halve(embedded(t), "tencent"))
	if r := h.trigger(); r.Outcome != store.Applied {
		t.Fatalf("run under the reloaded guard = %+v", r)
	}
	m := h.metrics()
	if !strings.Contains(m, `asfence_config_reloads_total{result="error"} 1`) || !strings.Contains(m, `asfence_config_reloads_total{result="ok"} 1`) {
		t.Fatalf("reload metrics:\n%s", grep(m, "reload"))
	}
}

func TestScheduleRunsAndNeverOverlaps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	cfg, _ := os.ReadFile(h.cfgPath)
	os.WriteFile(h.cfgPath, []byte(strings.Replace(string(cfg), "@every 1h", "@every 1s", 1)), 0o644)
	h.start()
	deadline := time.Now().Add(testDeadline)
	for {
		rs, _ := h.d.Runs(store.ListOptions{Limit: 5, Outcome: store.Unchanged})
		if len(rs) > 0 && rs[0].Trigger == TriggerSchedule {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Take the run slot as a run in progress would: a trigger is refused
	// with 409 and a scheduled run is skipped, not queued.
	h.d.sem <- struct{}{}
	h.d.mu.Lock()
	h.d.running = 999
	h.d.mu.Unlock()
	_, err := h.client.Trigger(context.Background(), "")
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Message, "run 999") {
		<-h.d.sem
		t.Fatalf("trigger while busy: %v", err)
	}
	rs, _ := h.d.Runs(store.ListOptions{Limit: 1})
	n := rs[0].ID
	deadline = time.Now().Add(testDeadline)
	for !strings.Contains(h.logs.String(), "run skipped") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	h.d.mu.Lock()
	h.d.running = 0
	h.d.mu.Unlock()
	<-h.d.sem
	if !strings.Contains(h.logs.String(), "run skipped") {
		t.Fatal("no skipped run logged")
	}
	if rs, _ := h.d.Runs(store.ListOptions{Limit: 1}); rs[0].ID != n {
		t.Fatalf("a run was recorded while the slot was taken: %d", rs[0].ID)
	}
}

func (h *harness) metrics() string {
	resp, err := http.Get(h.client.Base + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestCorruptStoreRefusesToStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	state := filepath.Join(h.dir, "state")
	os.MkdirAll(state, 0o700)
	junk := []byte(strings.Repeat("not a database ", 1000))
	os.WriteFile(filepath.Join(state, store.FileName), junk, 0o600)
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: cfg, Snapshot: h.snap})
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("New = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(state, store.FileName)); string(b) != string(junk) {
		t.Fatal("corrupt store was overwritten")
	}
}

// TestEmptyStoreFileRefusesToStart: a state file emptied (`: > asfence.db`)
// is not a new install: the daemon does not start, runs nothing and leaves
// the file as it is, instead of applying a registry that lost half the
// prefixes without the guard.
func TestEmptyStoreFileRefusesToStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	if r := h.wait(1); r.Outcome != store.Applied {
		t.Fatalf("run 1 = %+v", r)
	}
	h.stop()
	path := filepath.Join(h.dir, "state", store.FileName)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	writeSnapshot(t, h.snap, halve(embedded(t), "tencent"))
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg, Snapshot: h.snap, Log: logrus.New()})
	var ce *store.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "empty (0 bytes)") || !strings.Contains(err.Error(), path) {
		if d != nil {
			d.st.Close()
		}
		t.Fatalf("New with an emptied store = %v, want a CorruptError naming %s as empty", err, path)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("the emptied store was written: %v %v", fi, err)
	}
}

func TestOutputsWrittenAtomicallyWithPreviousVersionAndDiff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "outputs:\n  vendors: [bird, nftables, json]\nguard:\n  max_withdraw_ratio: 0.9\n")
	h.start()
	first := h.wait(1)
	out := filepath.Join(h.dir, "out")
	if len(first.Outputs) != 3 {
		t.Fatalf("outputs = %+v", first.Outputs)
	}
	for _, o := range first.Outputs {
		if !o.Changed || o.Error != "" {
			t.Fatalf("output %+v", o)
		}
	}
	birdConf := filepath.Join(out, "asfence-bird.conf")
	v1, err := os.ReadFile(birdConf)
	if err != nil || !strings.Contains(string(v1), "43.132.68.0/24") {
		t.Fatalf("bird output: %v\n%.300s", err, v1)
	}
	// The real parser is the judge of the file the daemon wrote.
	if _, err := exec.LookPath("bird"); err == nil {
		main := filepath.Join(h.dir, "bird-main.conf")
		os.WriteFile(main, []byte("router id 192.0.2.9;\nprotocol device { }\ninclude \""+birdConf+"\";\n"), 0o644)
		if out, err := exec.Command("bird", "-p", "-c", main).CombinedOutput(); err != nil {
			t.Fatalf("bird -p rejects the written file: %v\n%s", err, out)
		}
	}
	// An unchanged run writes nothing.
	if r := h.trigger(); r.Outcome != store.Unchanged || len(r.Outputs) != 0 {
		t.Fatalf("unchanged run = %+v", r)
	}
	s := embedded(t)
	tc := s.Target("tencent")
	var kept []asn.Prefix
	for _, p := range tc.Prefixes {
		if p.Prefix.String() != "43.132.68.0/24" {
			kept = append(kept, p)
		}
	}
	tc.Prefixes = kept
	writeSnapshot(t, h.snap, s)
	r := h.trigger()
	if r.Outcome != store.Applied || r.Diff.Removed != 1 {
		t.Fatalf("run = %+v", r)
	}
	v2, _ := os.ReadFile(birdConf)
	if strings.Contains(string(v2), "43.132.68.0/24") {
		t.Fatal("new bird file still has the removed prefix")
	}
	prev, _ := filepath.Glob(filepath.Join(out, "previous", "asfence-bird.conf.*"))
	if len(prev) != 1 {
		t.Fatalf("previous versions: %v", prev)
	}
	if b, _ := os.ReadFile(prev[0]); string(b) != string(v1) {
		t.Fatal("previous version is not the old file")
	}
	_, d, err := h.client.Run(context.Background(), r.ID)
	if err != nil || d == nil {
		t.Fatal(err)
	}
	found := false
	for _, od := range d.OutputDiffs {
		if od.File == "asfence-bird.conf" && strings.Contains(od.Diff, "-    43.132.68.0/24{24,32}") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no bird diff removing the prefix in %+v", d.OutputDiffs)
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, ".*tmp*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestLiveSourcesAndABrokenSourceFile(t *testing.T) {
	t.Parallel()
	list := filepath.Join(t.TempDir(), "tencent.txt")
	var b strings.Builder
	for _, p := range embedded(t).Target("tencent").Prefixes[:40] {
		b.WriteString(p.Prefix.String() + "\n")
	}
	os.WriteFile(list, []byte(b.String()), 0o644)
	h := newHarness(t, "sources:\n  files:\n    - format: cidr\n      path: "+list+"\n      target: tencent\n")
	h.live = true
	h.start()
	if r := h.wait(1); r.Outcome != store.Applied || len(r.Sources) != 1 || !r.Sources[0].OK || !strings.HasPrefix(r.Sources[0].Source, "file:cidr") {
		t.Fatalf("run 1: %+v", r)
	}
	if got := h.prefixCount("tencent"); got != 40 {
		t.Fatalf("tencent prefixes = %d", got)
	}
	os.Remove(list)
	r := h.trigger()
	if r.Outcome != store.Failed || !strings.Contains(r.Error, "tencent.txt") || !r.Degraded {
		t.Fatalf("run with the file gone: %+v", r)
	}
	if got := h.prefixCount("tencent"); got != 40 {
		t.Fatalf("tencent prefixes after the failure = %d", got)
	}
	// The metrics follow the run's record (they are updated once it is
	// stored): poll.
	for deadline := time.Now().Add(testDeadline); ; time.Sleep(20 * time.Millisecond) {
		m := h.metrics()
		if strings.Contains(m, "asfence_degraded 1") && strings.Contains(m, `asfence_source_up{source="sources"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", grep(m, "asfence_"))
		}
	}
}

// TestApplyCutOffByACrashIsCompletedAtStart: a stop between recording the
// set being applied and the commit leaves it pending; the next start
// announces it (the peers were moving to it) and records the run applied.
func TestApplyCutOffByACrashIsCompletedAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	h.stop()

	st, err := store.Open(filepath.Join(h.dir, "state"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := halve(embedded(t), "bytedance")
	cfg, _ := config.Load(h.cfgPath)
	r, _ := st.BeginRun(TriggerSchedule, time.Now())
	in := cfg.PolicyRules.Apply(asn.Select(s, cfg.TargetList))
	if err := st.BeginApply(r, nil, &store.State{RunID: r.ID, At: time.Now(), Snapshot: s, Intent: in}); err != nil {
		t.Fatal(err)
	}
	st.Close() // the process dies here

	writeSnapshot(t, h.snap, s) // the registry still says the same
	h.start()
	if a := h.d.Applied(); a == nil || len(a.Target("bytedance").Prefixes) != len(in.Target("bytedance").Prefixes) {
		t.Fatal("the pending set was not announced at start")
	}
	got := h.wait(r.ID)
	if got.Outcome != store.Applied || got.Error != "" {
		t.Fatalf("interrupted run after the restart: %+v", got)
	}
	if next := h.wait(r.ID + 1); next.Outcome != store.Unchanged {
		t.Fatalf("startup run: %+v", next)
	}
}

// A run that shows as finished has given up the run slot: the next trigger,
// sent the moment the record says finished, starts a run instead of being
// refused as busy (it failed about 1 run in 20 when the record was
// committed before the slot was released).
func TestFinishedRunNeverRefusesTheNext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	// Many runs, each cheap: the window this test looks for does not depend
	// on the size of the set.
	writeSnapshot(t, h.snap, small(t, 20))
	h.start()
	h.wait(1)
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		r, err := h.client.Trigger(ctx, "test")
		if err != nil {
			t.Fatalf("trigger %d, sent as soon as the previous run showed finished: %v", i, err)
		}
		deadline := time.Now().Add(testDeadline)
		for {
			got, _, err := h.client.Run(ctx, r.ID)
			if err == nil && got.Outcome != store.Running {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d did not finish", r.ID)
			}
		}
	}
}
