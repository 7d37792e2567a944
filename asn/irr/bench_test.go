package irr_test

import (
	"context"
	"os"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
)

// BenchmarkClientAS expands an AS-SET and resolves its members' route and
// route6 objects on a running server: the IRR client's share of
// `asfence resolve`. scripts/bench-irr.sh sets IRR_BENCH_ADDR (and
// IRR_BENCH_SOURCE, IRR_BENCH_SET) to its server; without them the
// benchmark is skipped.
func BenchmarkClientAS(b *testing.B) {
	addr := os.Getenv("IRR_BENCH_ADDR")
	if addr == "" {
		b.Skip("IRR_BENCH_ADDR not set (see scripts/bench-irr.sh)")
	}
	set := os.Getenv("IRR_BENCH_SET")
	if set == "" {
		set = "AS-BENCH"
	}
	var sources []string
	if s := os.Getenv("IRR_BENCH_SOURCE"); s != "" {
		sources = []string{s}
	}
	ctx := context.Background()
	tg := &asn.Target{Name: "bench", ASSets: []string{set}}
	var nASN, nPfx int
	for b.Loop() {
		// A new client per round: connecting is part of the work.
		c, err := irr.New(irr.Config{Address: addr, Sources: sources})
		if err != nil {
			b.Fatal(err)
		}
		members, err := c.Discover(ctx, tg)
		if err != nil {
			b.Fatal(err)
		}
		asns := make([]uint32, len(members))
		for i, m := range members {
			asns[i] = m.ASN
		}
		facts, err := c.Resolve(ctx, tg, asns)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		nASN, nPfx = len(asns), len(facts.Prefixes)
	}
	b.ReportMetric(float64(nASN), "asns")
	b.ReportMetric(float64(nPfx), "prefixes")
}
