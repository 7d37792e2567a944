package filters

import (
	"os"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// benchIntent is the snapshot named by $ASFENCE_BENCH_SNAPSHOT (the bench
// script makes one from the 2002 RIPE RIS table: about 112k prefixes) or
// the embedded default, after a policy that keeps everything.
func benchIntent(b testing.TB) *policy.Intent {
	b.Helper()
	var s *asn.Snapshot
	var err error
	if path := os.Getenv("ASFENCE_BENCH_SNAPSHOT"); path != "" {
		s, err = asn.ReadSnapshotFile(path)
	} else {
		s, err = asn.Embedded()
	}
	if err != nil {
		b.Fatal(err)
	}
	return buildPolicy(b, policy.PolicyConfig{AllowBogons: true, IPv4: policy.LengthBounds{MinLength: 1}, IPv6: policy.LengthBounds{MinLength: 1}}).Apply(s)
}

// BenchmarkRenderAll renders one Intent for all 12 vendors as
// `generate --vendor all` does: the aggregations once (Prepare), then
// every template, concurrently (the `make bench` row "render 112k
// prefixes for all 12 vendors").
func BenchmarkRenderAll(b *testing.B) {
	in := benchIntent(b)
	n := len(in.Exact("", prefixset.IPv4)) + len(in.Exact("", prefixset.IPv6))
	b.ReportMetric(float64(n), "prefixes")
	var opts []RenderOptions
	for _, v := range Vendors() {
		opts = append(opts, RenderOptions{Vendor: v, Version: "bench"})
	}
	for b.Loop() {
		if _, err := Prepare(in).RenderAll(opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderVendor renders single vendors (Prepare included), to
// compare with bgpq4 producing the same list.
func BenchmarkRenderVendor(b *testing.B) {
	in := benchIntent(b)
	vendors := []string{"junos", "cisco-ios"}
	if os.Getenv("ASFENCE_BENCH_ALL") != "" {
		vendors = Vendors()
	}
	for _, v := range vendors {
		b.Run(v, func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(in, RenderOptions{Vendor: v, Version: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
