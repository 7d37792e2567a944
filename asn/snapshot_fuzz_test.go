package asn

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodeSnapshot: no input makes the Snapshot reader panic; an error
// names the input; what it accepts is canonical (masked prefixes, no AS0)
// and survives an encode/decode round trip unchanged.
func FuzzDecodeSnapshot(f *testing.F) {
	for _, s := range []string{
		`{"generated_at": "2026-11-23T00:00:00Z", "targets": []}`,
		`{"generated_at": "2026-11-23T00:00:00Z", "incomplete": [{"source": "irr:127.0.0.1:43", "target": "tencent", "error": "timeout"}],
		  "targets": [{"name": "tencent", "id": 2, "asns": [{"asn": 45090, "name": "TENCENT-NET-AP", "evidence": [{"source": "builtin", "seen": "2026-11-23T00:00:00Z"}]}],
		  "prefixes": [{"prefix": "43.132.0.0/18", "origins": [45090], "evidence": [{"source": "ripestat", "detail": "seen", "seen": "2026-11-22T10:00:00Z"}]},
		               {"prefix": "2402:4e00::/32", "origins": [], "evidence": []}]}]}`,
		`{"generated_at": "2026-11-23T00:00:00Z", "targets": [{"name": "x", "prefixes": [{"prefix": "10.0.0.1/8"}]}]}`,
		`{"generated_at": "2026-11-23T00:00:00Z", "targets": [{"name": "x", "asns": [{"asn": 4294967296}]}]}`,
		`{"generated_at": "2026-11-23T00:00:00Z", "targets": [{"name": "x"}, {"name": "x"}]}`,
		`{"targets": []}`,
		`{"generated_at": "2026-11-23T00:00:00Z"} {}`,
		`[1, 2`,
	} {
		f.Add([]byte(s))
	}
	if s, err := Embedded(); err == nil {
		// A slice of the real data: a few entries of each target.
		for i := range s.Targets {
			t := &s.Targets[i]
			t.ASNs = t.ASNs[:min(3, len(t.ASNs))]
			t.Prefixes = t.Prefixes[:min(5, len(t.Prefixes))]
		}
		var b bytes.Buffer
		if s.Encode(&b) == nil {
			f.Add(b.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot("fuzz.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		for _, tr := range s.Targets {
			for _, a := range tr.ASNs {
				if a.ASN == 0 {
					t.Fatal("AS0 accepted")
				}
			}
			for _, p := range tr.Prefixes {
				if !p.Prefix.IsValid() || p.Prefix != p.Prefix.Masked() {
					t.Fatalf("prefix %v not canonical", p.Prefix)
				}
				for _, o := range p.Origins {
					if o == 0 {
						t.Fatal("origin AS0 accepted")
					}
				}
			}
		}
		var first bytes.Buffer
		if err := s.Encode(&first); err != nil {
			t.Fatalf("encode: %v", err)
		}
		s2, err := DecodeSnapshot("round trip", first.Bytes())
		if err != nil {
			t.Fatalf("own encoding rejected: %v\n%s", err, first.Bytes())
		}
		var second bytes.Buffer
		if err := s2.Encode(&second); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("round trip changed the snapshot:\n%s\n---\n%s", first.Bytes(), second.Bytes())
		}
	})
}
