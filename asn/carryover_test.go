package asn

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestCarryOver(t *testing.T) {
	day1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	ev := func(src string, at time.Time) Evidence { return Evidence{Source: src, Detail: "d", Seen: at} }
	pf := func(s string, origins []uint32, evs ...Evidence) Prefix {
		return Prefix{Prefix: netip.MustParsePrefix(s), Origins: origins, Evidence: evs}
	}
	as := func(n uint32, evs ...Evidence) ASN { return ASN{ASN: n, Evidence: evs} }
	prev := &Snapshot{GeneratedAt: day1, Targets: []TargetResult{{
		Name: "tencent",
		ASNs: []ASN{
			as(45090, ev("builtin", day1)),
			as(132203, ev("irr:RADB", day1)), // found through an AS-SET only
			as(133478, ev("builtin", day1), ev("ripestat", day1)),
		},
		Prefixes: []Prefix{
			pf("43.132.0.0/16", []uint32{45090}, ev("ripestat", day1)),
			pf("43.133.0.0/16", []uint32{45090}, ev("irr:RADB", day1)),
			pf("43.134.0.0/16", []uint32{45090}, ev("irr:RADB", day1), ev("ripestat", day1)),
			pf("101.32.0.0/16", []uint32{132203}, ev("rir:apnic", day1)), // origin only known through IRR
			pf("162.62.0.0/16", []uint32{45090}, ev("rir:apnic", day1)),
			pf("2402:4e00::/32", []uint32{45090}, ev("irr:RADB", day1)),
		},
	}, {
		Name:     "bytedance",
		Prefixes: []Prefix{pf("71.18.0.0/16", nil, ev("irr:RADB", day1))},
	}}}

	tests := []struct {
		name       string
		cur        *Snapshot
		want       []string // prefixes of tencent after carry-over
		wantASNs   []uint32
		carried    Carried
		evidenceOf map[string][]string // prefix -> sources expected
	}{
		{
			name: "IRR down: its prefixes and the ASN only it found are kept, with prefixes of that ASN",
			cur: &Snapshot{GeneratedAt: day2,
				Incomplete: []Incomplete{{Source: "irr:127.0.0.1:4343", Target: "tencent", Error: "i/o timeout"}},
				Targets: []TargetResult{{Name: "tencent",
					ASNs: []ASN{as(45090, ev("builtin", day2)), as(133478, ev("builtin", day2))},
					Prefixes: []Prefix{
						pf("43.132.0.0/16", []uint32{45090}, ev("ripestat", day2)),
						pf("43.134.0.0/16", []uint32{45090}, ev("ripestat", day2)),
					}}}},
			want:     []string{"43.132.0.0/16", "43.133.0.0/16", "43.134.0.0/16", "101.32.0.0/16", "2402:4e00::/32"},
			wantASNs: []uint32{45090, 132203, 133478},
			carried:  Carried{ASNs: 1, Prefixes: 3},
			evidenceOf: map[string][]string{
				"43.134.0.0/16": {"irr:RADB", "ripestat"}, // old IRR evidence merged back
				"43.133.0.0/16": {"irr:RADB"},
			},
		},
		{
			name: "only the other target failed: nothing is kept for this one",
			cur: &Snapshot{GeneratedAt: day2,
				Incomplete: []Incomplete{{Source: "irr:127.0.0.1:4343", Target: "bytedance", Error: "refused"}},
				Targets: []TargetResult{{Name: "tencent",
					ASNs:     []ASN{as(45090, ev("builtin", day2))},
					Prefixes: []Prefix{pf("43.132.0.0/16", []uint32{45090}, ev("ripestat", day2))}}}},
			want:     []string{"43.132.0.0/16"},
			wantASNs: []uint32{45090},
		},
		{
			name: "a failure for all targets (empty Target) counts for each",
			cur: &Snapshot{GeneratedAt: day2,
				Incomplete: []Incomplete{{Source: "rir:apnic", Error: "HTTP 503"}},
				Targets: []TargetResult{{Name: "tencent",
					ASNs:     []ASN{as(45090, ev("builtin", day2))},
					Prefixes: []Prefix{pf("43.132.0.0/16", []uint32{45090}, ev("ripestat", day2))}}}},
			// 101.32.0.0/16 is kept for its failed source even though its
			// origin is no longer attributed: the snapshot says it was.
			want:     []string{"43.132.0.0/16", "101.32.0.0/16", "162.62.0.0/16"},
			wantASNs: []uint32{45090},
			carried:  Carried{Prefixes: 2},
		},
		{
			name: "no failures: a prefix the sources dropped is gone",
			cur: &Snapshot{GeneratedAt: day2, Targets: []TargetResult{{Name: "tencent",
				ASNs:     []ASN{as(45090, ev("builtin", day2))},
				Prefixes: []Prefix{pf("43.132.0.0/16", []uint32{45090}, ev("ripestat", day2))}}}},
			want:     []string{"43.132.0.0/16"},
			wantASNs: []uint32{45090},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := prev.Target("tencent").Prefixes[2].Evidence
			got, carried := CarryOver(prev, tc.cur)
			tr := got.Target("tencent")
			if tr == nil {
				t.Fatal("target tencent missing")
			}
			var ps []string
			for _, p := range tr.Prefixes {
				ps = append(ps, p.Prefix.String())
			}
			want := slices.Clone(tc.want)
			slices.SortFunc(want, func(a, b string) int {
				return ComparePrefix(netip.MustParsePrefix(a), netip.MustParsePrefix(b))
			})
			if !slices.Equal(ps, want) {
				t.Errorf("prefixes = %v, want %v", ps, want)
			}
			var asns []uint32
			for _, a := range tr.ASNs {
				asns = append(asns, a.ASN)
			}
			if !slices.Equal(asns, tc.wantASNs) {
				t.Errorf("ASNs = %v, want %v", asns, tc.wantASNs)
			}
			if carried != tc.carried {
				t.Errorf("carried = %+v, want %+v", carried, tc.carried)
			}
			for p, wantSrc := range tc.evidenceOf {
				var src []string
				for _, x := range tr.Prefixes {
					if x.Prefix.String() == p {
						for _, e := range x.Evidence {
							src = append(src, e.Source)
						}
					}
				}
				if !slices.Equal(src, wantSrc) {
					t.Errorf("%s evidence sources = %v, want %v", p, src, wantSrc)
				}
			}
			if got.Target("bytedance") != nil {
				t.Error("target bytedance (not in cur) was carried over")
			}
			if !slices.Equal(got.Incomplete, tc.cur.Incomplete) && len(tc.cur.Incomplete) > 0 {
				t.Errorf("incomplete = %v, want %v", got.Incomplete, tc.cur.Incomplete)
			}
			if len(prev.Target("tencent").Prefixes[2].Evidence) != len(before) {
				t.Error("CarryOver modified prev")
			}
		})
	}
}

func TestCarryOverNilPrev(t *testing.T) {
	cur := &Snapshot{Incomplete: []Incomplete{{Source: "rdap", Error: "x"}},
		Targets: []TargetResult{{Name: "a", Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}}}
	got, c := CarryOver(nil, cur)
	if c != (Carried{}) || len(got.Target("a").Prefixes) != 1 {
		t.Fatalf("got %+v %+v", got, c)
	}
	got.Targets[0].Prefixes[0].Prefix = netip.MustParsePrefix("11.0.0.0/8")
	if cur.Targets[0].Prefixes[0].Prefix.String() != "10.0.0.0/8" {
		t.Fatal("result shares memory with cur")
	}
}
