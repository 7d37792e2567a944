package tables

import (
	"context"
	"testing"
)

// BenchmarkScan2002RIB reads the real 2002 RIS RIB (115,521 TABLE_DUMP
// records) into an index.
func BenchmarkScan2002RIB(b *testing.B) {
	for b.Loop() {
		s, err := New(Options{Format: MRT, Path: "testdata/mrt/bview.20020722.2337.gz"})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.load(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
