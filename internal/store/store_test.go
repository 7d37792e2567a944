package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// embeddedState is the real default snapshot and its Intent.
func embeddedState(t *testing.T, runID uint64) *State {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return &State{RunID: runID, At: t0, Snapshot: s, Intent: policy.DefaultPolicy().Apply(s)}
}

func openRW(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApplyCycleSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openRW(t, dir)
	if st, err := s.Applied(); err != nil || st != nil {
		t.Fatalf("fresh store: applied = %v, %v", st, err)
	}
	r, err := s.BeginRun("startup", t0)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != 1 || r.Outcome != Running {
		t.Fatalf("first run = %+v", r)
	}
	st := embeddedState(t, r.ID)
	ch := policy.Compare(nil, st.Intent)
	r.Diff = Summarize(ch)
	r.Targets = Count(st.Intent)
	if err := s.BeginApply(r, &Detail{Change: ch}, st); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Pending(); err != nil || p == nil || p.RunID != 1 {
		t.Fatalf("pending = %v, %v", p, err)
	}
	r.Outcome, r.End = Applied, t0.Add(time.Second)
	if err := s.CommitApply(r, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openRW(t, dir)
	defer s.Close()
	got, err := s.Applied()
	if err != nil || got == nil {
		t.Fatalf("applied after reopen = %v, %v", got, err)
	}
	if p, _ := s.Pending(); p != nil {
		t.Fatal("pending left after commit")
	}
	want := policy.Compare(st.Intent, got.Intent)
	if !want.Empty() {
		t.Fatalf("stored intent differs: %+v", want.Targets)
	}
	if n := len(got.Snapshot.Target("tencent").Prefixes); n != len(st.Snapshot.Target("tencent").Prefixes) || n == 0 {
		t.Fatalf("stored snapshot has %d tencent prefixes", n)
	}
	run, detail, err := s.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	if run.Outcome != Applied || run.Diff.Added == 0 || run.Diff.Added != r.Diff.Added {
		t.Fatalf("run = %+v", run)
	}
	if detail == nil || len(detail.Change.Targets) != 2 || len(detail.Change.Targets[1].Added) == 0 {
		t.Fatalf("detail = %+v", detail)
	}
	if ev := detail.Change.Targets[1].Added[0].Evidence; len(ev) == 0 {
		t.Fatal("diff lost its evidence")
	}
}

func TestHoldSupersedeApproveReject(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	hold := func() *Run {
		r, err := s.BeginRun("schedule", t0)
		if err != nil {
			t.Fatal(err)
		}
		r.Outcome, r.End, r.Guard = Held, t0, []string{"tencent: would withdraw 50%"}
		if err := s.Hold(r, &Detail{}, embeddedState(t, r.ID)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := hold()
	r2 := hold()
	w, err := s.Waiting()
	if err != nil || len(w) != 1 || w[0].ID != r2.ID {
		t.Fatalf("waiting = %v, %v", w, err)
	}
	old, _, _ := s.Run(r1.ID)
	if old.Decision == nil || old.Decision.Action != Superseded || old.Decision.SupersededBy != r2.ID {
		t.Fatalf("r1 decision = %+v", old.Decision)
	}
	var nh *NotHeldError
	if _, _, err := s.Held(r1.ID); !errors.As(err, &nh) {
		t.Fatalf("Held(superseded) = %v", err)
	}
	if _, _, err := s.Held(99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Held(99) = %v", err)
	}
	r, st, err := s.Held(r2.ID)
	if err != nil || st == nil || len(st.Intent.Targets) != 2 {
		t.Fatalf("Held(r2) = %v %v %v", r, st, err)
	}
	// Approve: apply exactly the held state.
	r.Decision = &Decision{Action: Approved, At: t0, By: "test"}
	if err := s.BeginApply(r, nil, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitApply(r, nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Applied(); a == nil || a.RunID != r2.ID {
		t.Fatalf("applied = %+v", a)
	}
	if w, _ := s.Waiting(); len(w) != 0 {
		t.Fatalf("waiting after approve = %v", w)
	}
	if _, err := s.Reject(r2.ID, "test", t0); !errors.As(err, &nh) {
		t.Fatalf("reject of approved run = %v", err)
	}
	r3 := hold()
	got, err := s.Reject(r3.ID, "cli", t0)
	if err != nil || got.Decision.Action != Rejected {
		t.Fatalf("reject = %+v, %v", got, err)
	}
	if a, _ := s.Applied(); a.RunID != r2.ID {
		t.Fatal("reject changed the applied state")
	}
}

func TestInterruptedAndAbort(t *testing.T) {
	dir := t.TempDir()
	s := openRW(t, dir)
	r, _ := s.BeginRun("schedule", t0)
	if err := s.BeginApply(r, nil, embeddedState(t, r.ID)); err != nil {
		t.Fatal(err)
	}
	s.Close() // the daemon "dies" here

	s = openRW(t, dir)
	defer s.Close()
	p, err := s.Pending()
	if err != nil || p == nil || p.RunID != r.ID {
		t.Fatalf("pending after restart = %v, %v", p, err)
	}
	in, err := s.Interrupted(t0.Add(time.Minute))
	if err != nil || len(in) != 1 || in[0].ID != r.ID {
		t.Fatalf("interrupted = %v, %v", in, err)
	}
	got, _, _ := s.Run(r.ID)
	if got.Outcome != Failed || got.Error == "" {
		t.Fatalf("interrupted run = %+v", got)
	}
	if err := s.AbortApply(got); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(); p != nil {
		t.Fatal("pending survived abort")
	}
	if err := s.CommitApply(got, nil); err == nil {
		t.Fatal("commit without pending succeeded")
	}
}

func TestRunsPagingAndPrune(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	for i := 0; i < 10; i++ {
		r, err := s.BeginRun("schedule", t0.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		r.Outcome, r.End = Unchanged, r.Start
		if i == 2 {
			r.Outcome = Failed
		}
		if err := s.PutRun(r, &Detail{}); err != nil {
			t.Fatal(err)
		}
	}
	// Run 4 is the applied one: pruning must keep it.
	st := embeddedState(t, 4)
	r4, _, _ := s.Run(4)
	if err := s.BeginApply(r4, nil, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitApply(r4, nil); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []*Run) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	page, _ := s.Runs(ListOptions{Limit: 3})
	if got := ids(page); len(got) != 3 || got[0] != 10 || got[2] != 8 {
		t.Fatalf("first page = %v", got)
	}
	page, _ = s.Runs(ListOptions{Limit: 3, Before: 8})
	if got := ids(page); len(got) != 3 || got[0] != 7 {
		t.Fatalf("second page = %v", got)
	}
	failed, _ := s.Runs(ListOptions{Outcome: Failed})
	if got := ids(failed); len(got) != 1 || got[0] != 3 {
		t.Fatalf("failed = %v", got)
	}
	n, err := s.Prune(Retention{Runs: 4}, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	all, _ := s.Runs(ListOptions{Limit: 100})
	if got := ids(all); n != 6 || len(got) != 4 || got[0] != 10 || got[3] != 4 {
		t.Fatalf("after prune by count (%d deleted): %v", n, got)
	}
	if _, _, err := s.Run(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned run 1: %v", err)
	}
	// By age: now 23:00, max age 3h: run 8 (19:00) goes, 9 (20:00) and 10 stay,
	// and run 4 (the applied one) stays whatever its age.
	n, err = s.Prune(Retention{Runs: 100, MaxAge: 3 * time.Hour}, t0.Add(11*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	all, _ = s.Runs(ListOptions{Limit: 100})
	if got := ids(all); n != 1 || len(got) != 3 || got[2] != 4 {
		t.Fatalf("after prune by age (%d deleted): %v", n, got)
	}
}

func TestCorruptFileIsReportedAndKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	garbage := []byte("this is not a bbolt file, but it is somebody's data\n")
	for len(garbage) < 8192 {
		garbage = append(garbage, garbage...)
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("Open(garbage) = %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(garbage) {
		t.Fatal("corrupt file was modified")
	}
}

func TestDamagedPageIsReported(t *testing.T) {
	dir := t.TempDir()
	s := openRW(t, dir)
	for i := 0; i < 50; i++ {
		r, _ := s.BeginRun("schedule", t0)
		r.Outcome = Unchanged
		r.Guard = []string{"padding padding padding padding padding padding padding"}
		s.PutRun(r, &Detail{})
	}
	s.Close()
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Zero every page after the two meta pages and the freelist: the
	// branch/leaf pages the meta pages point at become invalid.
	page := os.Getpagesize()
	for i := 3 * page; i < len(data); i++ {
		data[i] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open(damaged) = %v, want CorruptError", err)
	}
	t.Log(err)
}

func TestReadOnlyWhileLocked(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Options{ReadOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("read-only open of empty dir = %v", err)
	}
	s := openRW(t, dir)
	if _, err := Open(dir, Options{ReadOnly: true, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open while the daemon holds it = %v", err)
	}
	s.Close()
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if rs, err := ro.Runs(ListOptions{}); err != nil || len(rs) != 0 {
		t.Fatalf("runs = %v, %v", rs, err)
	}
}

func TestRunsByTriggerAndDate(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	// Runs 1-6, one every 12 hours; the even ones triggered through the API.
	for i := 0; i < 6; i++ {
		trigger := "schedule"
		if i%2 == 1 {
			trigger = "api"
		}
		r, err := s.BeginRun(trigger, t0.Add(time.Duration(i)*12*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		r.Outcome, r.End = Unchanged, r.Start
		if err := s.PutRun(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(o ListOptions) string {
		rs, err := s.Runs(o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprint(r.ID))
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{Trigger: "api"}, "6,4,2"},
		{ListOptions{Trigger: "api", Limit: 2}, "6,4"},
		{ListOptions{Trigger: "api", Before: 4}, "2"},
		{ListOptions{Since: t0.Add(24 * time.Hour)}, "6,5,4,3"},
		{ListOptions{Until: t0.Add(24 * time.Hour)}, "2,1"},
		{ListOptions{Since: t0.Add(12 * time.Hour), Until: t0.Add(48 * time.Hour), Trigger: "schedule"}, "3"},
		{ListOptions{Trigger: "reload"}, ""},
	} {
		if got := ids(c.o); got != c.want {
			t.Errorf("%+v: runs %s, want %s", c.o, got, c.want)
		}
	}
}

// TestEmptyOrTruncatedFileIsNotANewInstall: a store file that exists but
// holds nothing (`: > asfence.db`) or less than a store is damaged, not a
// new install: taking it for one would apply the next run without the guard
// (nothing applied to compare with) and withdraw what the registries lost.
func TestEmptyOrTruncatedFileIsNotANewInstall(t *testing.T) {
	src := t.TempDir()
	s := openRW(t, src)
	r, _ := s.BeginRun("schedule", t0)
	r.Outcome = Applied
	if err := s.BeginApply(r, &Detail{}, embeddedState(t, r.ID)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitApply(r, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	full, err := os.ReadFile(filepath.Join(src, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"100 bytes", full[:100]},
		{"half", full[:len(full)/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				st, err := Open(dir, Options{ReadOnly: ro})
				if err == nil {
					applied, aerr := st.Applied()
					st.Close()
					t.Fatalf("Open(%s, read-only %v) opened it (applied %v, %v): want an error", tc.name, ro, applied, aerr)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path {
					t.Fatalf("Open(%s, read-only %v) = %v, want a CorruptError for %s", tc.name, ro, err, path)
				}
				t.Logf("read-only %v: %v", ro, err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(tc.data) {
				t.Fatalf("the damaged file was changed (%d bytes, was %d)", len(after), len(tc.data))
			}
		})
	}
	// A new install (no directory, or an empty one) still starts empty.
	for _, dir := range []string{filepath.Join(t.TempDir(), "new", "state"), t.TempDir()} {
		st, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("new install in %s: %v", dir, err)
		}
		if a, err := st.Applied(); a != nil || err != nil {
			t.Fatalf("new install applied = %v, %v", a, err)
		}
		st.Close()
	}
}
