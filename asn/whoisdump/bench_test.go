package whoisdump_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/whoisdump"
)

// BenchmarkScan: one query over a generated dump of 100,000 inetnum
// objects (about 63 MB uncompressed), a target named in 2 of them.
func BenchmarkScan(b *testing.B) {
	t := &testing.T{}
	path := filepath.Join(b.TempDir(), "bench.db.inetnum.gz")
	size := generate(t, path, 100000)
	s, err := whoisdump.New(whoisdump.Options{Registry: "bench", Dumps: []whoisdump.Dump{{Path: path}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tg := &asn.Target{Name: "t", Names: []string{"needle"}}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		facts, err := s.Resolve(context.Background(), tg, nil)
		if err != nil || len(facts.Prefixes) != 2 {
			b.Fatalf("%d prefixes, %v", len(facts.Prefixes), err)
		}
	}
}
