package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// cpuTime is the process's CPU time so far (user + system): on a shared
// machine it shows growth that wall time hides under others' load.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleIntent is one target with n consecutive /24s from 20.0.0.0,
// skipping the first skip.
func scaleIntent(skip, n int) *policy.Intent {
	tg := policy.TargetIntent{Name: "bench", ID: 1, Prefixes: make([]asn.Prefix, 0, n)}
	for i := skip; i < skip+n; i++ {
		v := uint32(20)<<24 + uint32(i)<<8
		tg.Prefixes = append(tg.Prefixes, asn.Prefix{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)})
	}
	return &policy.Intent{Targets: []policy.TargetIntent{tg}}
}

// BenchmarkSpeakerScale: the speaker's own cost at 100k and 1M RTBH
// paths, with a neighbor configured that never connects (what reaches a
// peer is integration's BenchmarkBGPScale1M): Start loading the set into
// GoBGP, then Apply of a 1 % change (1 % withdrawn, 1 % new); wall and
// CPU time of the process, and the heap after a collection (GoBGP's RIB,
// the speaker's set and the Intent applied).
func BenchmarkSpeakerScale(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				nb := NeighborConfig{Address: "192.0.2.250", ASN: 65001, Families: []string{FamilyIPv4},
					Announce: []string{AnnounceBlackhole}, ConnectRetry: 3600}
				s, err := New(Options{Config: Config{ASN: 65001, RouterID: "10.0.0.1", Neighbors: []NeighborConfig{nb}}, Log: testLog(b)})
				if err != nil {
					b.Fatal(err)
				}
				in := scaleIntent(0, n)
				runtime.GC()
				t0, c0 := time.Now(), cpuTime(b)
				if err := s.Start(ctx, in); err != nil {
					b.Fatal(err)
				}
				load, loadCPU := time.Since(t0), cpuTime(b)-c0
				in = scaleIntent(n/100, n)
				t0, c0 = time.Now(), cpuTime(b)
				c, err := s.Apply(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				apply, applyCPU := time.Since(t0), cpuTime(b)-c0
				if c.Added != n/100 || c.Withdrawn != n/100 {
					b.Fatalf("Apply counts %+v", c)
				}
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(load.Seconds(), "load-s")
				b.ReportMetric(loadCPU.Seconds(), "load-cpu-s")
				b.ReportMetric(apply.Seconds(), "apply-s")
				b.ReportMetric(applyCPU.Seconds(), "apply-cpu-s")
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
				if err := s.Stop(ctx, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
