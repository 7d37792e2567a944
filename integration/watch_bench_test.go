package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
)

// TestWatchLatencyBench is a measurement for `make bench`
// (scripts/bench-watch.sh), run only with ASFENCE_BENCH=1: the time from
// the upstream's announcement of a new target prefix to the RTBH route at
// BIRD (upstream -> BIRD route reflector -> asfence's feed neighbor ->
// watch -> RTBH -> BIRD), next to the time the same announcement takes to
// reach a BIRD that peers with the route reflector directly (two plain
// BGP hops, no asfence). Both BIRDs are polled every 5 ms; it logs the
// medians of ASFENCE_BENCH_ROUNDS (default 15) announcements as one line
// "watch-latency asfence-ms=A bird-ms=B rounds=N". It asserts nothing
// about time.
func TestWatchLatencyBench(t *testing.T) {
	if os.Getenv("ASFENCE_BENCH") == "" {
		t.Skip("a benchmark: ASFENCE_BENCH=1 runs it")
	}
	rounds := 15
	if n, err := fmt.Sscan(os.Getenv("ASFENCE_BENCH_ROUNDS"), &rounds); n != 1 || err != nil {
		rounds = 15
	}
	w := newWatchLab(t, "watch:\n  max_additions: 1000\n  window: 1h\n", watchOptions{ref: true})
	ctx := context.Background()
	w.start("--offline")
	w.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 && r.Outcome == store.Applied })
	lab.WaitEstablished(t, ctx, w.rr, w.addr, 60*time.Second)
	lab.WaitEstablished(t, ctx, w.rr, w.upstream.Addr(), 60*time.Second)
	lab.WaitEstablished(t, ctx, w.rr, w.ref.Addr(), 60*time.Second)
	var asf, ref []time.Duration
	for i := range rounds {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{20, 30, byte(i), 0}), 24)
		start := time.Now()
		w.announce(t, []uint32{396986}, p)
		var a, r time.Duration
		deadline := start.Add(30 * time.Second)
		for (a == 0 || r == 0) && time.Now().Before(deadline) {
			if a == 0 {
				if ok, err := birdHolds(ctx, w.bird, p); err == nil && ok {
					a = time.Since(start)
				}
			}
			if r == 0 {
				if ok, err := birdHolds(ctx, w.ref, p); err == nil && ok {
					r = time.Since(start)
				}
			}
			time.Sleep(5 * time.Millisecond) // the polling interval of a measurement
		}
		if a == 0 || r == 0 {
			t.Fatalf("round %d: %s not at both BIRDs within 30 s (asfence %s, reference %s)", i, p, a, r)
		}
		asf, ref = append(asf, a), append(ref, r)
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	t.Logf("watch-latency asfence-ms=%.1f bird-ms=%.1f rounds=%d", med(asf), med(ref), rounds)
}
