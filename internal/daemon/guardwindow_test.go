package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/asfence/asfence/internal/store"
)

// TestGuardWindowStopsSmallSteps: ten runs each withdrawing under
// guard.max_withdraw_ratio (10 %) removed 68 of 101 prefixes; with the
// window (24h by default) the withdrawals add up against the set in force
// at its start, so at most 10 % go without approval. An approval is the
// operator's word: the approved set is the new base.
func TestGuardWindowStopsSmallSteps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	shrink := func(n int) {
		s := embedded(t)
		tc := s.Target("tencent")
		tc.Prefixes = tc.Prefixes[:n]
		writeSnapshot(t, h.snap, s)
	}
	n := 101
	shrink(n)
	h.start()
	if r := h.wait(1); r.Outcome != store.Applied {
		t.Fatalf("run 1 = %+v", r)
	}
	start := h.prefixCount("tencent")
	var held *store.Run
	for range 10 {
		n -= max(n*9/100, 1) // under 10 % of what the registry gave last time
		shrink(n)
		r := h.trigger()
		switch r.Outcome {
		case store.Applied:
		case store.Held:
			held = r
			if _, err := h.client.Reject(context.Background(), r.ID, "test"); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("run %d = %+v", r.ID, r)
		}
	}
	now := h.prefixCount("tencent")
	if removed := start - now; removed*10 > start {
		t.Fatalf("ten small runs withdrew %d of %d prefixes without approval", removed, start)
	}
	if held == nil || !strings.Contains(strings.Join(held.Guard, "; "), "guard.window") {
		t.Fatalf("no run held by the window: %+v", held)
	}
	t.Logf("held: %s", strings.Join(held.Guard, "; "))

	// Approving a held change makes its set the base: the next small step
	// is measured against it.
	shrink(n)
	r := h.trigger()
	if r.Outcome != store.Held {
		t.Fatalf("run = %+v", r)
	}
	if _, err := h.client.Approve(context.Background(), r.ID, "test"); err != nil {
		t.Fatal(err)
	}
	approved := h.prefixCount("tencent")
	if approved >= now {
		t.Fatalf("approval did not apply: %d prefixes (was %d)", approved, now)
	}
	shrink(n - max(n*9/100, 1))
	if r := h.trigger(); r.Outcome != store.Applied {
		t.Fatalf("a step under 10 %% of the approved set: %+v", r)
	}
}
