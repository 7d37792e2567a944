package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/prefixset"
)

func policySnapshot() *asn.Snapshot {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := []asn.Evidence{{Source: "test", Seen: now}}
	pfx := func(s string, origins ...uint32) asn.Prefix {
		return asn.Prefix{Prefix: netip.MustParsePrefix(s), Origins: origins, Evidence: ev}
	}
	return &asn.Snapshot{GeneratedAt: now, Targets: []asn.TargetResult{{
		Name: "t",
		ASNs: []asn.ASN{{ASN: 64600, Evidence: ev}, {ASN: 64601, Evidence: ev}, {ASN: 64602, Evidence: ev}},
		Prefixes: []asn.Prefix{
			pfx("0.0.0.0/0", 64600),          // default route
			pfx("10.1.0.0/16", 64600),        // bogon (RFC 1918)
			pfx("192.0.0.0/16", 64600),       // contains a bogon (192.0.2.0/24)
			pfx("4.0.0.0/8", 64600),          // shorter than min_length 10
			pfx("20.1.0.0/16", 64600),        // overlaps protected 20.1.2.0/24
			pfx("20.2.0.0/16", 64600),        // kept
			pfx("20.3.0.0/22", 64600),        // exception 20.3.1.0/24 cut out
			pfx("20.4.0.0/24", 64602),        // only originated by an excepted ASN
			pfx("20.5.0.0/24", 64602, 64601), // one origin left: kept
			pfx("20.6.0.0/25", 64600),        // longer than max_length 24
			pfx("2400:1::/32", 64600),        // kept
			pfx("fd00::/8", 64600),           // bogon (ULA)
			pfx("3000:1::/32", 64600),        // inside 2000::/3, not documentation: kept
			pfx("2400::/12", 64600),          // shorter than min_length 19
		},
	}}}
}

func TestPolicyApply(t *testing.T) {
	pc := PolicyConfig{Protect: []string{"20.1.2.0/24"}, IPv4: LengthBounds{MaxLength: 24}}
	pc.Exceptions.Prefixes = []string{"20.3.1.0/24"}
	pc.Exceptions.ASNs = []uint32{64602}
	pol := build(t, pc)
	in := pol.Apply(policySnapshot())
	tg := in.Target("t")
	var kept []string
	for _, x := range tg.Prefixes {
		kept = append(kept, x.Prefix.String())
	}
	want := []string{"20.2.0.0/16", "20.3.0.0/24", "20.3.2.0/23", "20.5.0.0/24", "2400:1::/32", "3000:1::/32"}
	if !slices.Equal(kept, want) {
		t.Errorf("kept %v\nwant %v", kept, want)
	}
	if !slices.Equal(tg.ASNs, []uint32{64600, 64601}) {
		t.Errorf("ASNs %v (64602 is an exception)", tg.ASNs)
	}
	reasons := map[string]string{}
	for _, d := range in.Dropped {
		key := d.Prefix
		if key == "" {
			key = fmt.Sprintf("AS%d", d.ASN)
		}
		reasons[key] = d.Reason
		if d.Target != "t" || d.Detail == "" {
			t.Errorf("drop without target or detail: %+v", d)
		}
	}
	for k, v := range map[string]string{
		"0.0.0.0/0": ReasonDefault, "10.1.0.0/16": ReasonBogon, "192.0.0.0/16": ReasonBogon,
		"4.0.0.0/8": ReasonTooShort, "20.1.0.0/16": ReasonProtected, "20.3.0.0/22": ReasonException,
		"20.4.0.0/24": ReasonExceptionAS, "20.6.0.0/25": ReasonTooLong, "fd00::/8": ReasonBogon,
		"2400::/12": ReasonTooShort, "AS64602": ReasonExceptionAS,
	} {
		if reasons[k] != v {
			t.Errorf("%s: dropped as %q, want %q", k, reasons[k], v)
		}
	}
	// The cut-out parts carry the policy's evidence next to the original.
	for _, x := range tg.Prefixes {
		if x.Prefix.String() == "20.3.2.0/23" && !slices.ContainsFunc(x.Evidence, func(e asn.Evidence) bool {
			return e.Source == "policy" && strings.Contains(e.Detail, "20.3.0.0/22")
		}) {
			t.Errorf("cut-out part lacks policy evidence: %+v", x.Evidence)
		}
	}
}

func TestPolicyBuildErrors(t *testing.T) {
	pc := PolicyConfig{Protect: []string{"1.2.3.4/8", "nonsense"}, IPv4: LengthBounds{MinLength: 0, MaxLength: 40}, IPv6: LengthBounds{MinLength: 64, MaxLength: 48, FilterMaxLength: 200}}
	pc.Exceptions.ASNs = []uint32{0}
	_, err := pc.Build()
	var got []string
	for _, x := range field.Errors(err) {
		got = append(got, x.Path)
	}
	// Paths are relative to the policy block.
	for _, want := range []string{"protect[0]", "protect[1]", "exceptions.asns[0]", "ipv4.max_length", "ipv6", "ipv6.filter_max_length"} {
		if !slices.Contains(got, want) {
			t.Errorf("no problem reported at %s (got %v)", want, got)
		}
	}
}

// TestFilterMaxLength: filter_max_length caps the "le" of route filters,
// and more_specifics: false makes them exact.
func TestFilterMaxLength(t *testing.T) {
	off := false
	s := policySnapshot()
	in := build(t, PolicyConfig{IPv4: LengthBounds{FilterMaxLength: 24}}).Apply(s)
	for _, r := range in.RouteFilterEntries("", prefixset.IPv4) {
		if r.Le != max(24, r.Prefix.Bits()) {
			t.Errorf("entry %s: le %d, want 24", r.Prefix, r.Le)
		}
	}
	in = build(t, PolicyConfig{MoreSpecifics: &off}).Apply(s)
	for _, r := range in.RouteFilterEntries("", prefixset.IPv4) {
		if !r.Exact() && r.Ge != r.Le {
			t.Errorf("exact mode entry %s", r)
		}
	}
}

func TestCompareIntents(t *testing.T) {
	pol := DefaultPolicy()
	old := pol.Apply(policySnapshot())
	// A registry change: 20.2.0.0/16 gone, two prefixes and an origin ASN new.
	s := policySnapshot()
	tr := &s.Targets[0]
	tr.Prefixes = slices.DeleteFunc(tr.Prefixes, func(p asn.Prefix) bool { return p.Prefix.String() == "20.2.0.0/16" })
	ev := []asn.Evidence{{Source: "test", Detail: "changed", Seen: s.GeneratedAt}}
	for _, p := range []string{"20.7.0.0/24", "2400:2::/32"} {
		tr.Prefixes = append(tr.Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix(p), Origins: []uint32{64600}, Evidence: ev})
	}
	tr.ASNs = append(tr.ASNs, asn.ASN{ASN: 64603, Evidence: ev})
	s.Normalize()
	neu := pol.Apply(s)
	ch := Compare(old, neu)
	added, removed := ch.Counts()
	if added != 2 || removed != 1 || ch.Empty() || len(ch.Targets) != 1 {
		t.Fatalf("added %d removed %d: %+v", added, removed, ch)
	}
	tc := ch.Targets[0]
	if tc.Target != "t" || !slices.Equal(tc.AddedASNs, []uint32{64603}) || len(tc.RemovedASNs) != 0 ||
		tc.Removed[0].Prefix.String() != "20.2.0.0/16" || tc.Before != tc.After-1 {
		t.Errorf("target change %+v", tc)
	}
	for _, p := range tc.Added {
		if len(p.Evidence) == 0 || p.Evidence[0].Detail != "changed" {
			t.Errorf("added %s without its evidence", p.Prefix)
		}
	}
	if !Compare(old, pol.Apply(policySnapshot())).Empty() {
		t.Error("an Intent compared with itself changed")
	}
	if ch := Compare(nil, old); ch.Empty() || ch.Targets[0].Before != 0 {
		t.Errorf("from nothing: %+v", ch)
	}
}

// build is PolicyConfig.Build for a config the test knows is valid.
func build(t *testing.T, pc PolicyConfig) Policy {
	t.Helper()
	pol, err := pc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestSnapshotDropsAreReported: what Select left out of a stored snapshot
// (a prefix without evidence, one of a foreign origin) is in the Intent's
// drops like the policy's own.
func TestSnapshotDropsAreReported(t *testing.T) {
	doc := `{"generated_at":"2026-11-01T00:00:00Z","targets":[{"name":"example","asns":[{"asn":64500,"evidence":[{"source":"test"}]}],
	"prefixes":[{"prefix":"1.0.0.0/24","origins":[64500],"evidence":[{"source":"test"}]},
	{"prefix":"1.0.4.0/22","origins":[64500],"evidence":[]},
	{"prefix":"1.0.16.0/24","origins":[64501],"evidence":[{"source":"test"}]}]}]}`
	s, err := asn.DecodeSnapshot("test.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	in := DefaultPolicy().Apply(asn.Select(s, []asn.Target{{Name: "example", ASNs: []asn.SeedASN{{ASN: 64500}}}}))
	counts := DropCounts(in.Dropped)
	if counts[ReasonNoEvidence] != 1 || counts[ReasonOriginNotTarget] != 1 || len(in.Targets[0].Prefixes) != 1 {
		t.Fatalf("drops %+v, kept %d", in.Dropped, len(in.Targets[0].Prefixes))
	}
	for _, d := range in.Dropped {
		if d.Target != "example" || d.Prefix == "" || d.Detail == "" {
			t.Errorf("drop %+v", d)
		}
	}
}
