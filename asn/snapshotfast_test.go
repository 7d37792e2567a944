package asn

import (
	"bytes"
	"os"
	"testing"
)

// fastDecode must agree with encoding/json on everything it accepts: the
// same Snapshot (compared as encoded bytes) or the same validation error.
func FuzzFastDecodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[]}`,
		`{"generated_at":"2026-11-23T00:00:00.5+02:00","generator":"g \"q\" \u003c","extra":{"a":[1,true,null,"x"]},"targets":[{"name":"t","id":7,"asns":[{"asn":64500,"name":"N","name_only":true,"evidence":[{"source":"s","detail":"d\\n\u00e9","seen":"2026-01-01T00:00:00Z"}]}],"prefixes":[{"prefix":"192.0.2.0/24","origins":[64500,64501],"evidence":[]},{"prefix":"2001:db8::/32","origins":[]}]}]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[{"name":"t","prefixes":[{"prefix":"10.0.0.1/8"}]}]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[{"name":"t","prefixes":[{"prefix":"14.103.0.0/16","origins":[],"upstreams":[4811,4134],"evidence":[]},{"prefix":"10.0.0.0/8","upstreams":[0]}]}]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[{"name":"t","asns":[{"asn":0}]}]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","Targets":[]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[{"name":"t","id":-1}]}`,
		`{"generated_at":null,"targets":[]}`,
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[{"name":"t","name":"u"}]}`,
		"{\"generated_at\":\"2026-11-23T00:00:00Z\",\"generator\":\"\xff\",\"targets\":[]}",
		`{"generated_at":"2026-11-23T00:00:00Z","targets":[]} x`,
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("data/default.json"); err == nil {
		f.Add(b[:min(len(b), 6000)]) // truncated: fast path must give up
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, ok := fastDecode(data)
		if !ok {
			return
		}
		slow, err := slowDecode("in", data)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
		}
		a, errA := convertRaw("in", raw)
		b, errB := convertRaw("in", slow)
		if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
			t.Fatalf("errors differ: fast %v, encoding/json %v", errA, errB)
		}
		if errA != nil {
			return
		}
		var ea, eb bytes.Buffer
		if err := a.Encode(&ea); err != nil {
			t.Fatal(err)
		}
		if err := b.Encode(&eb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ea.Bytes(), eb.Bytes()) {
			t.Fatalf("fast and encoding/json decode differ:\n%s\n---\n%s", ea.Bytes(), eb.Bytes())
		}
	})
}

// The embedded snapshot, as Encode writes it, takes the fast path.
func TestFastDecodeTakesEncodedSnapshots(t *testing.T) {
	b, err := os.ReadFile("data/default.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fastDecode(b); !ok {
		t.Fatal("fastDecode declined the embedded snapshot")
	}
}
