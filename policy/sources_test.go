package policy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
)

// sourcesSnapshot: prefixes attested by different kinds of source, named as
// the embedded snapshot names them; the operator-named files carry their
// kind in the provenance.
func sourcesSnapshot() *asn.Snapshot {
	now := time.Date(2026, 6, 19, 0, 0, 0, 0, time.UTC)
	ev := func(src, detail string) asn.Evidence { return asn.Evidence{Source: src, Detail: detail, Seen: now} }
	cloud := ev("file:cloud-ip-ranges", "disposable/cloud-ip-ranges txt/tencent.txt")
	asPrefix := ev("file:as-prefix", "liuzhen9320/AS-Prefix AS45090")
	ipverse := ev("file:ipverse", "announced by AS45090")
	table := ev("table:ip-location-db-v4", "1.12.0.0-1.15.255.255 AS45090")
	reg := ev("rir:apnic", "registered to A91B2C5B")
	upstream := ev("table:ip-location-db-v4", "originated by AS4811, not a target ASN (upstream): the route itself")
	pfx := func(s string, origins []uint32, ev ...asn.Evidence) asn.Prefix {
		return asn.Prefix{Prefix: netip.MustParsePrefix(s), Origins: origins, Evidence: ev}
	}
	o := []uint32{45090}
	return &asn.Snapshot{GeneratedAt: now,
		Provenance: []asn.Input{
			{Source: "file:cloud-ip-ranges", Input: "tencent.txt", Kind: string(asn.KindCloudRanges)},
			{Source: "file:as-prefix", Input: "AS45090", Kind: string(asn.KindASNList)},
		},
		Targets: []asn.TargetResult{{Name: "tencent", ASNs: []asn.ASN{{ASN: 45090, Evidence: []asn.Evidence{ev("builtin", "seed")}}},
			Prefixes: []asn.Prefix{
				pfx("1.12.0.0/14", o, table, asPrefix, ipverse, cloud), // 2 kinds + cloud
				pfx("43.128.0.0/14", nil, cloud),                       // cloud only
				pfx("49.51.0.0/16", o, asPrefix, ipverse),              // 1 kind, 2 sources
				pfx("101.32.0.0/16", nil, reg, upstream),               // 1 kind; the upstream's route does not attest
				pfx("119.28.0.0/16", nil, reg, cloud, table),           // registration + table + cloud
			}}}}
}

func kept(in *Intent) []string {
	var out []string
	for _, p := range in.Targets[0].Prefixes {
		out = append(out, p.Prefix.String())
	}
	return out
}

func dropped(in *Intent) map[string]Drop {
	out := map[string]Drop{}
	for _, d := range in.Dropped {
		out[d.Prefix] = d
	}
	return out
}

func TestSourceRules(t *testing.T) {
	s := sourcesSnapshot()
	// Default: everything kept, evidence untouched.
	in := DefaultPolicy().Apply(s)
	if len(in.Dropped) != 0 || len(in.Targets[0].Prefixes) != 5 {
		t.Fatalf("default policy dropped %v", in.Dropped)
	}

	// Excluding the cloud list by kind: the prefix it alone attests is
	// dropped; the others are kept without citing it.
	in = build(t, PolicyConfig{ExcludeSources: []string{"cloud-ranges"}}).Apply(s)
	if want := []string{"1.12.0.0/14", "49.51.0.0/16", "101.32.0.0/16", "119.28.0.0/16"}; !slices.Equal(kept(in), want) {
		t.Errorf("kept %v, want %v", kept(in), want)
	}
	d := dropped(in)["43.128.0.0/14"]
	if d.Reason != ReasonExcludedSource || !strings.Contains(d.Detail, "file:cloud-ip-ranges (cloud-ranges)") {
		t.Errorf("drop of the cloud-only prefix: %+v", d)
	}
	for _, p := range in.Targets[0].Prefixes {
		if slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source == "file:cloud-ip-ranges" }) {
			t.Errorf("%s still cites the excluded source", p.Prefix)
		}
	}
	// The same by source name, and by pattern.
	for _, x := range []string{"file:cloud-ip-ranges", "file:cloud-*"} {
		in2 := build(t, PolicyConfig{ExcludeSources: []string{x}}).Apply(s)
		if !slices.Equal(kept(in2), kept(in)) {
			t.Errorf("exclude %q kept %v, want %v", x, kept(in2), kept(in))
		}
	}

	// min_sources 2 counts kinds: two per-ASN lists are one kind, an
	// upstream's route is no attestation.
	in = build(t, PolicyConfig{MinSources: 2}).Apply(s)
	if want := []string{"1.12.0.0/14", "43.128.0.0/14", "49.51.0.0/16", "101.32.0.0/16", "119.28.0.0/16"}; len(kept(in))+len(in.Dropped) != len(want) {
		t.Fatalf("kept %v dropped %v", kept(in), in.Dropped)
	}
	if want := []string{"1.12.0.0/14", "119.28.0.0/16"}; !slices.Equal(kept(in), want) {
		t.Errorf("min_sources 2 kept %v, want %v", kept(in), want)
	}
	for _, pf := range []string{"43.128.0.0/14", "49.51.0.0/16", "101.32.0.0/16"} {
		if d := dropped(in)[pf]; d.Reason != ReasonTooFewSources || !strings.Contains(d.Detail, "min_sources is 2") {
			t.Errorf("%s: drop %+v", pf, d)
		}
	}
	if d := dropped(in)["49.51.0.0/16"]; !strings.Contains(d.Detail, "attested by 1 kind(s)") || !strings.Contains(d.Detail, "file:as-prefix (asn-list), file:ipverse (asn-list)") {
		t.Errorf("49.51.0.0/16 detail: %q", d.Detail)
	}

	// Both, and per target: the target's min_sources replaces the global
	// one, its exclusions add to the global ones.
	in = build(t, PolicyConfig{ExcludeSources: []string{"cloud-ranges"},
		Targets: map[string]TargetPolicyConfig{"tencent": {MinSources: 3}}}).Apply(s)
	if len(kept(in)) != 0 {
		t.Errorf("min 3 without the cloud list kept %v", kept(in))
	}
	if d := dropped(in)["119.28.0.0/16"]; d.Reason != ReasonTooFewSources || !strings.Contains(d.Detail, "not counted (excluded): file:cloud-ip-ranges") {
		t.Errorf("119.28.0.0/16: %+v", d)
	}
	in = build(t, PolicyConfig{MinSources: 3, Targets: map[string]TargetPolicyConfig{"other": {MinSources: 1}}}).Apply(s)
	if want := []string{"1.12.0.0/14", "119.28.0.0/16"}; !slices.Equal(kept(in), want) { // 3 kinds each (with the cloud list)
		t.Errorf("global min 3 kept %v, want %v", kept(in), want)
	}
}

func TestSourceRuleErrors(t *testing.T) {
	_, err := PolicyConfig{MinSources: -1, ExcludeSources: []string{"", "table:[x"},
		Targets: map[string]TargetPolicyConfig{"Bad Name": {}, "t": {MinSources: 99}}}.Build()
	var got []string
	for _, x := range field.Errors(err) {
		got = append(got, x.Path)
	}
	for _, want := range []string{"min_sources", "exclude_sources[0]", "exclude_sources[1]", "targets.Bad Name", "targets.t.min_sources"} {
		if !slices.Contains(got, want) {
			t.Errorf("no problem at %s (got %v)", want, got)
		}
	}
}

// TestExcludeCloudRangesEmbedded: on the embedded snapshot, excluding the
// cloud-range kind drops exactly the prefixes no other source attests.
func TestExcludeCloudRangesEmbedded(t *testing.T) {
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, p := range s.Target("tencent").Prefixes {
		if !slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool {
			return e.Source != "file:cloud-ip-ranges" && !asn.IsUpstreamEvidence(e)
		}) {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the embedded snapshot has no prefix from the cloud list alone")
	}
	base := DefaultPolicy().Apply(s)
	in := build(t, PolicyConfig{Targets: map[string]TargetPolicyConfig{"tencent": {ExcludeSources: []string{"cloud-ranges"}}}}).Apply(s)
	got := DropCounts(in.Dropped)[ReasonExcludedSource] - DropCounts(base.Dropped)[ReasonExcludedSource]
	if got != want {
		t.Errorf("dropped %d as excluded-source, want %d", got, want)
	}
	for _, d := range in.Dropped {
		if d.Reason == ReasonExcludedSource && d.Target != "tencent" {
			t.Errorf("drop outside the target: %+v", d)
		}
	}
	if len(in.Target("bytedance").Prefixes) != len(base.Target("bytedance").Prefixes) {
		t.Errorf("bytedance changed")
	}
	t.Logf("tencent: %d prefixes from the cloud-range list alone dropped, %d kept", got, len(in.Target("tencent").Prefixes))
}
