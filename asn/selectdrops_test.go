package asn

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSelectReportsWhatItDrops: a snapshot prefix without evidence, or
// whose origin is none of the target's ASNs in the snapshot, is left out
// and reported (it used to vanish without a word); choices of the config
// (exclude_asns, name-only ASNs not opted in) stay the config's.
func TestSelectReportsWhatItDrops(t *testing.T) {
	doc := `{"generated_at":"2026-11-01T00:00:00Z","targets":[{"name":"example","asns":[
	{"asn":64500,"evidence":[{"source":"test"}]},{"asn":64502,"evidence":[{"source":"test"}]}],
	"prefixes":[
	{"prefix":"1.0.0.0/24","origins":[64500],"evidence":[{"source":"test"}]},
	{"prefix":"1.0.4.0/22","origins":[64500],"evidence":[]},
	{"prefix":"1.0.16.0/24","origins":[64501],"evidence":[{"source":"test"}]},
	{"prefix":"1.0.32.0/24","origins":[64501,64500],"evidence":[{"source":"test"}]},
	{"prefix":"1.0.64.0/24","origins":[64502],"evidence":[{"source":"test"}]}]}]}`
	s, err := DecodeSnapshot("test.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out := Select(s, []Target{{Name: "example", ASNs: []SeedASN{{ASN: 64500}}, ExcludeASNs: []uint32{64502}}})
	var kept []string
	for _, p := range out.Target("example").Prefixes {
		kept = append(kept, p.Prefix.String())
	}
	if strings.Join(kept, " ") != "1.0.0.0/24 1.0.32.0/24" {
		t.Fatalf("kept %v", kept)
	}
	got := map[string]SnapshotDrop{}
	for _, d := range out.Dropped {
		got[d.Prefix.String()] = d
	}
	if len(out.Dropped) != 2 {
		t.Fatalf("dropped %+v, want 2", out.Dropped)
	}
	if d := got["1.0.4.0/22"]; d.Target != "example" || d.Reason != DropNoEvidence {
		t.Errorf("prefix without evidence: %+v", d)
	}
	if d := got["1.0.16.0/24"]; d.Reason != DropOriginNotTarget || !strings.Contains(d.Detail, "AS64501") {
		t.Errorf("prefix of another origin: %+v", d)
	}
}

// TestReadSnapshotFileChecksTheSizeFirst: a file over MaxSnapshotBytes is
// refused before it is read (an 829 MB file was read up to 512 MB first).
func TestReadSnapshotFileChecksTheSizeFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"generated_at":"2026-11-01T00:00:00Z","targets":[` + strings.Repeat(" ", 4096))
	if err := f.Truncate(MaxSnapshotBytes + 1<<20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadSnapshotFile(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadSnapshotFile(huge) = %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("read %d MB of a file it refuses for its size", alloc>>20)
	}
}
