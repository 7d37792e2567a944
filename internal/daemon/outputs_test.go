package daemon

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/store"
)

// readyz is the /readyz status code.
func (h *harness) readyz() int {
	h.t.Helper()
	resp, err := http.Get(h.client.Base + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// metricLine is the sample line of an unlabelled metric.
func metricLine(text, name string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// withoutPrefix drops one prefix of a target.
func withoutPrefix(s *asn.Snapshot, target, prefix string) *asn.Snapshot {
	t := s.Target(target)
	var kept []asn.Prefix
	for _, p := range t.Prefixes {
		if p.Prefix.String() != prefix {
			kept = append(kept, p)
		}
	}
	t.Prefixes = kept
	return s
}

// TestOutputsRetriedUntilTheyMatchTheAppliedSet: vendor files that could
// not be written are reported by the run (and trigger --wait), /readyz and
// asfence_outputs_current, and rewritten by every following run (also an
// unchanged one), at a restart and at a reload until they match the
// applied set; a write that fails for one file changes none, so the files
// never come from different runs.
func TestOutputsRetriedUntilTheyMatchTheAppliedSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	blocker := filepath.Join(h.dir, "blocker")
	out := filepath.Join(blocker, "out")
	cfg, _ := os.ReadFile(h.cfgPath)
	cfg = []byte(strings.Replace(string(cfg), "output_dir: "+filepath.Join(h.dir, "out"), "output_dir: "+out, 1) +
		"outputs:\n  vendors: [bird, nftables, json]\nguard:\n  max_withdraw_ratio: 0.9\n")
	if err := os.WriteFile(h.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// output_dir cannot be made: its parent is a regular file.
	if err := os.WriteFile(blocker, []byte("in the way\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{"asfence-bird.conf", "asfence.nft", "asfence.json"}
	const gone = "43.132.68.0/24"
	// has says which of the vendor files hold prefix (missing files fail).
	has := func(prefix string) []bool {
		t.Helper()
		var in []bool
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			in = append(in, strings.Contains(string(b), prefix))
		}
		return in
	}
	stale := func(r *store.Run, what string) {
		t.Helper()
		if r.OutputsError == "" {
			t.Fatalf("%s: run %d (%s) reports no output failure: %+v", what, r.ID, r.Outcome, r.Outputs)
		}
		if c := h.readyz(); c != http.StatusServiceUnavailable {
			t.Fatalf("%s: /readyz %d while the files do not match the applied set", what, c)
		}
		if m := metricLine(h.metrics(), "asfence_outputs_current"); m != "asfence_outputs_current 0" {
			t.Fatalf("%s: metric %q", what, m)
		}
		st, err := h.client.Status(t.Context())
		if err != nil || st.Ready || st.OutputsError == "" {
			t.Fatalf("%s: status %+v %v", what, st, err)
		}
	}
	current := func(r *store.Run, what string) {
		t.Helper()
		if r.OutputsError != "" {
			t.Fatalf("%s: run %d: %s", what, r.ID, r.OutputsError)
		}
		if c := h.readyz(); c != http.StatusOK {
			t.Fatalf("%s: /readyz %d", what, c)
		}
		if m := metricLine(h.metrics(), "asfence_outputs_current"); m != "asfence_outputs_current 1" {
			t.Fatalf("%s: metric %q", what, m)
		}
	}

	h.start()
	r := h.wait(1)
	if r.Outcome != store.Applied {
		t.Fatalf("run 1 = %+v", r)
	}
	stale(r, "output_dir under a file")
	// The next run finds the set unchanged and the directory fixed: it
	// writes the files.
	os.Remove(blocker)
	r = h.trigger()
	if r.Outcome != store.Unchanged || len(r.Outputs) != 3 {
		t.Fatalf("run after the fix = %+v", r)
	}
	current(r, "after the fix")
	if in := has(gone); !in[0] || !in[1] || !in[2] {
		t.Fatalf("files lack %s: %v", gone, in)
	}
	// Once current, an unchanged run writes nothing.
	if r := h.trigger(); r.Outcome != store.Unchanged || len(r.Outputs) != 0 || r.OutputsError != "" {
		t.Fatalf("unchanged run with current files = %+v", r)
	}

	// One file cannot be replaced (a directory in its place): none is, so
	// the files stay one set.
	nft := filepath.Join(out, "asfence.nft")
	os.Remove(nft)
	if err := os.MkdirAll(filepath.Join(nft, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeSnapshot(t, h.snap, withoutPrefix(embedded(t), "tencent", gone))
	r = h.trigger()
	if r.Outcome != store.Applied || r.Diff.Removed != 1 {
		t.Fatalf("run = %+v", r)
	}
	stale(r, "nftables file blocked")
	for _, f := range []string{"asfence-bird.conf", "asfence.json"} {
		if b, _ := os.ReadFile(filepath.Join(out, f)); !strings.Contains(string(b), gone) {
			t.Fatalf("%s was rewritten although asfence.nft could not be: the files come from different runs", f)
		}
	}
	// A restart while the files lag rewrites them at start-up once it can.
	h.stop()
	os.RemoveAll(nft)
	h.start()
	if in := has(gone); in[0] || in[1] || in[2] {
		t.Fatalf("after a restart the files still hold %s: %v", gone, in)
	}
	current(h.wait(r.ID+1), "after the restart")

	// A reload (SIGHUP) rewrites them too.
	os.Remove(nft)
	os.MkdirAll(filepath.Join(nft, "x"), 0o755)
	writeSnapshot(t, h.snap, embedded(t))
	r = h.trigger()
	if r.Outcome != store.Applied {
		t.Fatalf("run = %+v", r)
	}
	stale(r, "nftables file blocked again")
	os.RemoveAll(nft)
	h.reload <- struct{}{}
	r = h.wait(r.ID + 1)
	if r.Trigger != TriggerReload || r.Outcome != store.Unchanged {
		t.Fatalf("reload run = %+v", r)
	}
	current(r, "after the reload")
	if in := has(gone); !in[0] || !in[1] || !in[2] {
		t.Fatalf("files after the reload lack %s: %v", gone, in)
	}

	// A run that fails, and one that is held, write them too.
	for _, c := range []struct {
		next     string
		applied  *asn.Snapshot
		withGone bool
	}{
		{store.Failed, withoutPrefix(embedded(t), "tencent", gone), false},
		{store.Held, embedded(t), true},
	} {
		os.Remove(nft)
		if err := os.MkdirAll(filepath.Join(nft, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeSnapshot(t, h.snap, c.applied)
		if r := h.trigger(); r.Outcome != store.Applied {
			t.Fatalf("run = %+v", r)
		} else {
			stale(r, "before a "+c.next+" run")
		}
		os.RemoveAll(nft)
		if c.next == store.Failed {
			os.WriteFile(h.snap, []byte("{broken"), 0o644)
		} else {
			s := embedded(t)
			s.Target("tencent").Prefixes = nil // would empty it: held
			writeSnapshot(t, h.snap, s)
		}
		r := h.trigger()
		if r.Outcome != c.next {
			t.Fatalf("run = %+v, want %s", r, c.next)
		}
		current(r, "after a "+c.next+" run")
		if in := has(gone); in[0] != c.withGone || in[1] != c.withGone || in[2] != c.withGone {
			t.Fatalf("files after a %s run: %s in them %v, want %v", c.next, gone, in, c.withGone)
		}
	}
}

// TestOutputsOnAFullDisk: output_dir on a full filesystem (a small tmpfs,
// filled up): the applied run reports that its files were not written and
// leaves the old ones whole; once space is freed, the next run, unchanged,
// writes them.
func TestOutputsOnAFullDisk(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	h := newHarness(t, "")
	out := filepath.Join(h.dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", out, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	// Registered before the harness's stop, so it runs after it.
	t.Cleanup(func() {
		if err := unix.Unmount(out, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", out, err)
		}
	})
	f, _ := os.OpenFile(h.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("outputs:\n  vendors: [bird, nftables]\nguard:\n  max_withdraw_ratio: 0.9\n")
	f.Close()
	h.start()
	if r := h.wait(1); r.Outcome != store.Applied || r.OutputsError != "" {
		t.Fatalf("run 1 = %+v", r)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bird1, nft1 := read("asfence-bird.conf"), read("asfence.nft")
	// Fill the filesystem.
	filler, err := os.Create(filepath.Join(out, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for {
		if _, err := filler.Write(chunk[:512]); err != nil {
			break
		}
	}
	filler.Close()
	const gone = "43.132.68.0/24"
	writeSnapshot(t, h.snap, withoutPrefix(embedded(t), "tencent", gone))
	r := h.trigger()
	if r.Outcome != store.Applied || !strings.Contains(r.OutputsError, "no space left") {
		t.Fatalf("run on a full disk = %+v", r)
	}
	if read("asfence-bird.conf") != bird1 || read("asfence.nft") != nft1 {
		t.Fatal("the files changed although they could not all be written")
	}
	if tmp, _ := filepath.Glob(filepath.Join(out, ".*tmp*")); len(tmp) != 0 {
		t.Fatalf("temporary files left on the full disk: %v", tmp)
	}
	if c := h.readyz(); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d on a full disk", c)
	}
	os.Remove(filepath.Join(out, "filler"))
	r = h.trigger()
	if r.Outcome != store.Unchanged || r.OutputsError != "" {
		t.Fatalf("run once space is free = %+v", r)
	}
	if strings.Contains(read("asfence-bird.conf"), gone) || strings.Contains(read("asfence.nft"), gone) {
		t.Fatal("the files were not rewritten once space was free")
	}
	if c := h.readyz(); c != http.StatusOK {
		t.Fatalf("/readyz %d", c)
	}
}
