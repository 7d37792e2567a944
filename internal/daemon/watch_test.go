package daemon

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/internal/watch"
)

func fitsAll(int) (bool, string) { return true, "" }

// applyWatch is ApplyWatch as the watch calls it: again while the run
// slot is busy (a run just finished may still hold it; the watch retries).
func applyWatch(t *testing.T, d *Daemon, cands []watch.Candidate, fits func(int) (bool, string)) (watch.Result, error) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		res, err := d.ApplyWatch(context.Background(), cands, fits)
		if !errors.Is(err, api.ErrBusy) || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A prefix the watch applied stays through runs that are not scheduled
// (with its watch evidence), and a scheduled run drops it once routing no
// longer shows it (it is not in the registries' snapshot); a batch beyond
// the guard is held; while another held change waits, the watch applies
// nothing.
func TestWatchPrefixUntilScheduledRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	ctx := context.Background()
	p := netip.MustParsePrefix("20.1.0.0/24")
	c := watch.Candidate{Target: "tencent", Prefix: p, Origins: []uint32{45090}, FirstSeen: time.Now(),
		Evidence: []asn.Evidence{{Source: "feed:192.0.2.30", Detail: "originated by AS45090", Seen: time.Now().UTC()}}}
	bogon := watch.Candidate{Target: "tencent", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Origins: []uint32{45090},
		Evidence: c.Evidence}
	res, err := applyWatch(t, h.d, []watch.Candidate{c, bogon}, fitsAll)
	if err != nil || res.Outcome != watch.Applied || res.Added != 1 || res.Refused[watch.Key{Target: "tencent", Prefix: bogon.Prefix}] != "bogon" {
		t.Fatalf("ApplyWatch: %+v %v", res, err)
	}
	r := h.wait(res.RunID)
	if r.Trigger != TriggerWatch || r.Outcome != store.Applied || r.Diff.Added != 1 || r.Diff.Removed != 0 {
		t.Fatalf("watch run %+v", r)
	}
	has := func() bool {
		tg := h.d.Applied().Target("tencent")
		for _, x := range tg.Prefixes {
			if x.Prefix == p {
				return len(x.Evidence) == 1 && x.Evidence[0].Source == "feed:192.0.2.30"
			}
		}
		return false
	}
	if !has() {
		t.Fatal("not applied")
	}
	// An API run: unchanged, the prefix carried with its evidence.
	if r := h.trigger(); r.Outcome != store.Unchanged || r.Carried.Prefixes != 1 || !has() {
		t.Fatalf("api run %+v, applied %v", r, has())
	}
	// Beyond the guard: held, the applied set unchanged.
	c2 := c
	c2.Prefix = netip.MustParsePrefix("20.2.0.0/24")
	res, err = applyWatch(t, h.d, []watch.Candidate{c2}, func(int) (bool, string) { return false, "too many" })
	if err != nil || res.Outcome != watch.Held {
		t.Fatalf("ApplyWatch beyond the guard: %+v %v", res, err)
	}
	if w, rej := h.d.HeldState(res.RunID); !w || rej {
		t.Fatalf("held state %v %v", w, rej)
	}
	if _, err := h.d.Reject(ctx, res.RunID, "test"); err != nil {
		t.Fatal(err)
	}
	if w, rej := h.d.HeldState(res.RunID); w || !rej {
		t.Fatalf("rejected: held state %v %v", w, rej)
	}
	// A scheduled run: routing no longer shows it (the watch's live view
	// is empty), the registries never did: withdrawn.
	h.d.scheduled()
	runs, err := h.d.Runs(store.ListOptions{Limit: 1})
	if err != nil || len(runs) != 1 || runs[0].Trigger != TriggerSchedule || runs[0].Outcome != store.Applied || runs[0].Diff.Removed != 1 || has() {
		t.Fatalf("scheduled run %+v (%v), still applied %v", runs, err, has())
	}
}
