package asn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/field"
)

func TestEmbeddedSnapshotHasBothTargets(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bytedance", "tencent"} {
		tr := s.Target(name)
		if tr == nil {
			t.Fatalf("embedded snapshot lacks target %s", name)
		}
		if len(tr.ASNs) == 0 || len(tr.Prefixes) == 0 {
			t.Fatalf("%s: %d ASNs, %d prefixes", name, len(tr.ASNs), len(tr.Prefixes))
		}
		for _, p := range tr.Prefixes {
			if len(p.Evidence) == 0 {
				t.Fatalf("%s: prefix %s has no evidence", name, p.Prefix)
			}
		}
	}
	if len(s.Provenance) == 0 {
		t.Fatal("embedded snapshot records no provenance")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	var a bytes.Buffer
	if err := s.Encode(&a); err != nil {
		t.Fatal(err)
	}
	s2, err := DecodeSnapshot("round trip", a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s2.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("encode(decode(encode(s))) differs from encode(s)")
	}
}

func TestDecodeSnapshotErrorsNameThePlace(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"targets":[]}`, "generated_at: missing"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","prefixes":[{"prefix":"10.0.0.1/8"}]}]}`,
			"targets[0].prefixes[0].prefix: invalid prefix \"10.0.0.1/8\": host bits set"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","prefixes":[{"prefix":"1.2.3.0/33"}]}]}`,
			"targets[0].prefixes[0].prefix: invalid prefix"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","asns":[{"asn":0}]}]}`, "targets[0].asns[0].asn: ASN 0 out of range"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x"},{"name":"x"}]}`, "targets[1].name: duplicate target"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"Bad Name"}]}`, "targets[0].name: invalid target name"},
		{"{\n\"generated_at\": \"2026-01-01T00:00:00Z\",\n\"targets\": [,]}", "f.json: line 3:"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","prefixes":[{"prefix":"1.2.3.0/24","origins":["a"]}]}]}`, "line 1: targets[0].prefixes[0].origins[0]: want a number, got string"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","asns":[{"asn":64496,"evidence":[{"seen":"2026-01-01T00:00:00Z"}]}]}]}`,
			"targets[0].asns[0].evidence[0].source: missing"},
		{"{\"generated_at\":\"2026-01-01T00:00:00Z\",\n\"targets\":[{\"name\":\"x\",\"name\":\"y\"}]}", "line 2: duplicate object member name"},
		// Lists are decoded from their text by a second decoder: places
		// are still the document's.
		{"{\"generated_at\":\"2026-01-01T00:00:00Z\",\"targets\":[{\"name\":\"x\",\"prefixes\":[\n{\"prefix\":\"1.2.3.0/24\",\"origins\":[1]},\n{\"prefix\":\"1.2.4.0/24\",\"origins\":[\n1,\n\"a\"]}]}]}",
			"line 5: targets[0].prefixes[1].origins[1]: want a number, got string"},
		{"{\"generated_at\":\"2026-01-01T00:00:00Z\",\"targets\":[{\"name\":\"x\",\"prefixes\":[\n{\"prefix\":\"1.2.3.0/24\",\"evidence\":[{\"source\":\"a\"}]},\n{\"prefix\":\"1.2.4.0/24\",\"evidence\":[{\"source\":\"a\"},\n{\"source\":\"b\",\"seen\":\"never\"}]}]}]}",
			"line 4: targets[0].prefixes[1].evidence[1].seen: want an RFC 3339 time"},
		{"{\"generated_at\":\"2026-01-01T00:00:00Z\",\"targets\":[{\"name\":\"x\",\"prefixes\":[\n{\"prefix\":\"1.2.3.0/24\",\"evidence\":[\n{\"source\":\"a\",\"source\":\"b\"}]}]}]}", "line 3: duplicate object member name"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","prefixes":[{"prefix":"1.2.3.0/24","origins":[1.5]}]}]}`, "origins[0]: want an integer"},
		{`{"generated_at":"yesterday","targets":[]}`, "generated_at: want an RFC 3339 time"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"x","prefixes":[`, "truncated JSON document"},
		{``, "empty document"},
		{`{"generated_at":"2026-01-01T00:00:00Z","targets":[]} {}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := DecodeSnapshot("f.json", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeSnapshot(%q) = %v, want error containing %q", c.doc, err, c.want)
		}
	}
}

func TestSelectHonoursNameOnlyAndExclusions(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	bd, _ := BuiltinTarget("bytedance")
	out := Select(s, []Target{bd})
	tr := out.Target("bytedance")
	for _, a := range tr.ASNs {
		if a.ASN == 138419 || a.ASN == 139158 {
			t.Fatalf("name-only AS%d selected without opt-in", a.ASN)
		}
	}
	for _, p := range tr.Prefixes {
		for _, o := range p.Origins {
			if o == 138419 {
				t.Fatalf("prefix %s of name-only AS138419 selected without opt-in", p.Prefix)
			}
		}
	}
	bd.IncludeNameOnly = true
	bd.ExcludeASNs = []uint32{137718}
	bd.ExcludePrefixes = []netip.Prefix{netip.MustParsePrefix("71.18.0.0/16")}
	out = Select(s, []Target{bd})
	tr = out.Target("bytedance")
	var pico, volcano bool
	for _, a := range tr.ASNs {
		pico = pico || a.ASN == 138419 && a.NameOnly
		volcano = volcano || a.ASN == 137718
	}
	if !pico || volcano {
		t.Fatalf("opt-in/exclusion not honoured: pico=%v volcano=%v", pico, volcano)
	}
	for _, p := range tr.Prefixes {
		if netip.MustParsePrefix("71.18.0.0/16").Contains(p.Prefix.Addr()) {
			t.Fatalf("excluded prefix %s kept", p.Prefix)
		}
		for _, o := range p.Origins {
			if o == 137718 {
				t.Fatalf("prefix %s of excluded AS137718 kept", p.Prefix)
			}
		}
	}
	if out.Target("tencent") != nil {
		t.Fatal("unselected target kept")
	}
}

type fakeSource struct {
	name  string
	err   error
	facts Facts
	found []ASNFact
}

func (f fakeSource) Name() string { return f.name }
func (f fakeSource) Discover(context.Context, *Target) ([]ASNFact, error) {
	return f.found, f.err
}
func (f fakeSource) Resolve(context.Context, *Target, []uint32) (Facts, error) { return f.facts, f.err }

func TestEngineKeepsOtherSourcesWhenOneFails(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := Evidence{Source: "good", Seen: now}
	good := fakeSource{name: "good",
		found: []ASNFact{{ASN: 64500, Name: "DISCOVERED", Evidence: ev}},
		facts: Facts{Prefixes: []PrefixFact{
			{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Origin: 64500, Evidence: ev},
			{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Origin: 64999, Evidence: ev}, // origin not attributed
		}}}
	bad := fakeSource{name: "bad", err: errors.New("connection refused")}
	e := &Engine{Sources: []Source{good, bad}, Now: func() time.Time { return now }}
	s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 64496}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) != 1 || s.Incomplete[0].Source != "bad" || s.Incomplete[0].Target != "t" || s.Incomplete[0].Error != "connection refused" {
		t.Fatalf("incomplete = %+v, want the bad source once", s.Incomplete)
	}
	tr := s.Target("t")
	if len(tr.ASNs) != 2 || len(tr.Prefixes) != 1 || tr.Prefixes[0].Prefix.String() != "198.51.100.0/24" {
		t.Fatalf("result = %+v", tr)
	}
	// All sources failing is an error, but the (empty) snapshot still says why.
	e.Sources = []Source{bad}
	s, err = e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 64496}}}})
	if err == nil || s == nil || len(s.Incomplete) == 0 {
		t.Fatalf("all failed: err=%v snapshot=%v", err, s)
	}
}

func TestBuildTargetsExtendsBuiltins(t *testing.T) {
	tru := true
	ts, err := BuildTargets([]TargetConfig{
		{Name: "tencent", ASNs: []uint32{64500}, ExcludeASNs: []uint32{9390}},
		{Name: "example", ASSets: []string{"as-example"}},
		{Name: "bytedance", Replace: true, ASNs: []uint32{396986}, IncludeNameOnly: &tru},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0].ID != 2 || ts[1].ID != 3 || ts[2].ID != 1 || ts[2].Description != "" {
		t.Fatalf("targets/IDs: %+v", ts)
	}
	if got := len(ts[0].ActiveASNs()); got != 7 { // 7 built-in + 64500 - 9390
		t.Fatalf("tencent active ASNs = %d, want 7", got)
	}
	if ts[1].ASSets[0] != "AS-EXAMPLE" {
		t.Fatalf("as-set not upper-cased: %v", ts[1].ASSets)
	}
	if len(ts[2].ASNs) != 1 || len(ts[2].NameOnly) != 0 {
		t.Fatalf("replace did not replace the built-in: %+v", ts[2])
	}
	_, err = BuildTargets([]TargetConfig{{Name: "x"}, {Name: "x", ASNs: []uint32{1}}, {Name: "y", ASSets: []string{"bad set"}},
		{Name: "z", ASNs: []uint32{2}, ID: 9}, {Name: "w", ASNs: []uint32{3}, ID: 9}})
	var msgs []string
	for _, pr := range field.Errors(err) {
		msgs = append(msgs, pr.Path+": "+pr.Msg)
	}
	joined := strings.Join(msgs, "\n")
	// Paths index the configured list, also after a rejected entry: the
	// duplicate id is on [4], not on the fourth target kept.
	for _, want := range []string{"[0]: target \"x\" has no", "[1].name: duplicate", "[2].as_sets[0]: invalid AS-SET", "[4].id: id 9 is also used by target \"z\""} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", joined, want)
		}
	}
}

// The encoder must produce what encoding/json would, value for value,
// including strings that need escapes, and read back unchanged.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	odd := "quote\" back\\ <tag> & ctl\x01\t\n bad\xff utf8 \u2028 ünï"
	s.Generator = odd
	s.Incomplete = []Incomplete{{Source: "irr:x", Target: "tencent", Error: odd}, {Source: "rdap", Error: "e"}}
	s.Targets[0].ASNs[0].Evidence[0].Detail = odd
	s.Targets[0].ASNs[0].NameOnly = true
	s.Targets[0].Prefixes[0].Origins = nil
	var got bytes.Buffer
	if err := s.Encode(&got); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got.Bytes(), &a); err != nil {
		t.Fatalf("Encode wrote invalid JSON: %v", err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Encode and encoding/json disagree")
	}
	back, err := DecodeSnapshot("encoded", got.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := back.Encode(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), got.Bytes()) {
		t.Fatal("the snapshot changed through encode, decode, encode")
	}
}

// TestEngineSharesOneAnswer: one big answer in prefix order is kept as it
// is (not copied) and its prefixes share their origin and evidence; the
// same facts out of order, or with a prefix repeated, give the same
// snapshot; the source's facts are never changed.
func TestEngineSharesOneAnswer(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := Evidence{Source: "irr", Detail: "route object, origin AS64500", Seen: now}
	ev2 := Evidence{Source: "irr", Detail: "route object, origin AS64501", Seen: now}
	var sorted []PrefixFact
	for i := range 6 {
		sorted = append(sorted, PrefixFact{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(2 * i), 0}), 24), Origin: 64500, Evidence: ev})
	}
	sorted[3].Origin, sorted[3].Evidence = 64501, ev2 // a different origin in the middle
	run := func(facts []PrefixFact) *TargetResult {
		t.Helper()
		kept := slices.Clone(facts)
		e := &Engine{Sources: []Source{fakeSource{name: "irr", facts: Facts{Prefixes: facts}}}, Now: func() time.Time { return now }}
		s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 64500}, {ASN: 64501}}}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(facts, kept) {
			t.Fatalf("the source's facts were changed")
		}
		return s.Target("t")
	}
	want := run(sorted)
	if len(want.Prefixes) != 6 {
		t.Fatalf("sorted answer: %+v", want.Prefixes)
	}
	for i, p := range want.Prefixes {
		o, e := uint32(64500), ev
		if i == 3 {
			o, e = 64501, ev2
		}
		if !slices.Equal(p.Origins, []uint32{o}) || len(p.Evidence) != 1 || p.Evidence[0] != e {
			t.Errorf("prefix %d: %+v", i, p)
		}
	}
	if &want.Prefixes[0].Evidence[0] != &want.Prefixes[1].Evidence[0] || &want.Prefixes[0].Origins[0] != &want.Prefixes[2].Origins[0] {
		t.Errorf("equal origin and evidence of neighbouring prefixes are not shared")
	}
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)
	repeated := append(slices.Clone(sorted), sorted[1])
	for name, facts := range map[string][]PrefixFact{"reversed": reversed, "repeated": repeated} {
		got := run(facts)
		if !reflect.DeepEqual(got.Prefixes, want.Prefixes) {
			t.Errorf("%s: %+v, want %+v", name, got.Prefixes, want.Prefixes)
		}
	}
}

// TestReadSnapshotFileSharesAndSizes: a file read by ReadSnapshotFile (its
// prefixes counted first and held in one array) gives what the streaming
// reader gives, with several targets, with equal lists shared, and with a
// layout the count misses (spaces after the member names).
func TestReadSnapshotFileSharesAndSizes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := []Evidence{{Source: "irr:X", Detail: "route object", Seen: now}}
	s := &Snapshot{GeneratedAt: now}
	for _, name := range []string{"a", "b", "c"} {
		tr := TargetResult{Name: name, ASNs: []ASN{{ASN: 64500, Evidence: ev}}}
		for i := range 200 {
			tr.Prefixes = append(tr.Prefixes, Prefix{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(name[0]), byte(i), 0}), 24),
				Origins: []uint32{64500 + uint32(i%2)}, Evidence: ev})
		}
		s.Targets = append(s.Targets, tr)
	}
	s.Normalize()
	var doc bytes.Buffer
	if err := s.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	spaced := bytes.ReplaceAll(doc.Bytes(), []byte(`"prefix":`), []byte(`"prefix" :`))
	for name, data := range map[string][]byte{"written": doc.Bytes(), "spaced": spaced} {
		path := filepath.Join(t.TempDir(), "s.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSnapshotFile(path)
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := ReadSnapshot("s.json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) || !reflect.DeepEqual(streamed, s) {
			t.Fatalf("%s: read back differs", name)
		}
		p := got.Targets[1].Prefixes
		if &p[0].Evidence[0] != &p[1].Evidence[0] || &p[0].Origins[0] != &p[2].Origins[0] {
			t.Errorf("%s: equal lists are not shared", name)
		}
		// A target's prefixes are its own: appending does not reach the next.
		first := got.Targets[0].Prefixes
		_ = append(first, Prefix{})
		if got.Targets[1].Prefixes[0].Prefix != s.Targets[1].Prefixes[0].Prefix {
			t.Errorf("%s: appending to one target's prefixes changed the next", name)
		}
	}
}
