package asn

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeTable is a RouteLookup answering from a fixed route list.
type fakeTable struct {
	name   string
	routes []RouteFact
	err    error
	asked  []netip.Prefix
}

func (f *fakeTable) Name() string { return f.name }
func (f *fakeTable) Routes(_ context.Context, p netip.Prefix) ([]RouteFact, error) {
	f.asked = append(f.asked, p)
	var out []RouteFact
	for _, r := range f.routes {
		if r.Prefix.Bits() >= p.Bits() && p.Contains(r.Prefix.Addr()) {
			out = append(out, r)
		}
	}
	return out, f.err
}

// A prefix registered to a target (no origin) that a routing table shows
// announced by another AS: the other AS is recorded as an upstream of the
// prefix, with the table's evidence, and never becomes a target ASN; a
// route inside it originated by a target ASN is no upstream.
func TestRegisteredPrefixGetsUpstreamNotTargetASN(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen := time.Date(2025, 12, 31, 8, 0, 0, 0, time.UTC)
	reg := netip.MustParsePrefix("14.103.0.0/16")
	whois := fakeSource{name: "whois:apnic", facts: Facts{Prefixes: []PrefixFact{
		{Prefix: reg, Evidence: Evidence{Source: "whois:apnic", Detail: "registered to ORG-BVET1-AP (netname VOLCANO-ENGINE)", Seen: now}},
		{Prefix: netip.MustParsePrefix("14.103.64.0/23"), Origin: 137718, Evidence: Evidence{Source: "whois:apnic", Seen: now}},
	}}}
	table := &fakeTable{name: "table:rv2", routes: []RouteFact{
		{Prefix: netip.MustParsePrefix("14.103.0.0/18"), Origin: 4811, Evidence: Evidence{Source: "table:rv2", Detail: "10 peers", Seen: seen}},
		{Prefix: netip.MustParsePrefix("14.103.128.0/18"), Origin: 4811, Evidence: Evidence{Source: "table:rv2", Detail: "9 peers", Seen: seen.Add(time.Hour)}},
		{Prefix: netip.MustParsePrefix("14.103.64.0/23"), Origin: 137718, Evidence: Evidence{Source: "table:rv2", Detail: "12 peers", Seen: seen}},
		{Prefix: netip.MustParsePrefix("14.104.0.0/16"), Origin: 4134, Evidence: Evidence{Source: "table:rv2", Seen: seen}}, // outside
	}}
	e := &Engine{Sources: []Source{whois, table}, Now: func() time.Time { return now }}
	s, err := e.Run(context.Background(), []Target{{Name: "bytedance", ASNs: []SeedASN{{ASN: 137718}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) != 0 {
		t.Fatalf("incomplete: %+v", s.Incomplete)
	}
	if !slices.Equal(table.asked, []netip.Prefix{reg}) {
		t.Fatalf("table asked about %v, want only the registered prefix %s", table.asked, reg)
	}
	tr := s.Target("bytedance")
	var asns []uint32
	for _, a := range tr.ASNs {
		asns = append(asns, a.ASN)
	}
	if !slices.Equal(asns, []uint32{137718}) {
		t.Fatalf("target ASNs = %v, want only 137718 (AS4811 is an upstream, not the target's)", asns)
	}
	if len(tr.Prefixes) != 2 {
		t.Fatalf("prefixes = %+v, want the /16 and the /23", tr.Prefixes)
	}
	p := tr.Prefixes[0]
	if p.Prefix != reg || len(p.Origins) != 0 || !slices.Equal(p.Upstreams, []uint32{4811}) {
		t.Fatalf("registered prefix = %+v, want no origin and upstream 4811", p)
	}
	var tableEv *Evidence
	for i, ev := range p.Evidence {
		if ev.Source == "table:rv2" {
			tableEv = &p.Evidence[i]
		}
	}
	if tableEv == nil || !strings.Contains(tableEv.Detail, "AS4811") || !strings.Contains(tableEv.Detail, "14.103.0.0/18") ||
		!strings.Contains(tableEv.Detail, "1 more route") || !tableEv.Seen.Equal(seen.Add(time.Hour)) {
		t.Fatalf("table evidence = %+v", p.Evidence)
	}
	if q := tr.Prefixes[1]; !slices.Equal(q.Origins, []uint32{137718}) || q.Upstreams != nil {
		t.Fatalf("/23 = %+v, want origin 137718 and no upstream", q)
	}

	// The upstream survives the JSON round trip and Select, and Select
	// does not keep a prefix on an upstream alone.
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"upstreams":[4811]`) {
		t.Fatalf("JSON lacks the upstream:\n%s", b.String())
	}
	back, err := DecodeSnapshot("snap.json", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sel := Select(back, []Target{{Name: "bytedance", ASNs: []SeedASN{{ASN: 137718}}}})
	if got := sel.Target("bytedance").Prefixes[0]; !slices.Equal(got.Upstreams, []uint32{4811}) || len(got.Origins) != 0 {
		t.Fatalf("after Select: %+v", got)
	}
}

// A failing table is listed as incomplete for the stage; what it returned
// before failing is kept, and the registration itself is never lost.
func TestRouteLookupFailureKeepsRegistration(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reg := netip.MustParsePrefix("198.51.100.0/24")
	whois := fakeSource{name: "whois:ripe", facts: Facts{Prefixes: []PrefixFact{{Prefix: reg, Evidence: Evidence{Source: "whois:ripe", Seen: now}}}}}
	table := &fakeTable{name: "table:broken", err: errors.New("table:broken: x.mrt: byte offset 12: record runs past the end"),
		routes: []RouteFact{{Prefix: reg, Origin: 64511, Evidence: Evidence{Source: "table:broken", Seen: now}}}}
	e := &Engine{Sources: []Source{whois, table}, Now: func() time.Time { return now }}
	s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 64500}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) != 1 || s.Incomplete[0].Source != "table:broken" || !strings.Contains(s.Incomplete[0].Error, "byte offset 12") {
		t.Fatalf("incomplete = %+v", s.Incomplete)
	}
	tr := s.Target("t")
	if len(tr.Prefixes) != 1 || tr.Prefixes[0].Prefix != reg || !slices.Equal(tr.Prefixes[0].Upstreams, []uint32{64511}) {
		t.Fatalf("prefixes = %+v", tr.Prefixes)
	}
	if ev := tr.Prefixes[0].Evidence; len(ev) != 2 || ev[0].Source != "table:broken" || !strings.HasSuffix(ev[0].Detail, "(upstream): the route itself") {
		t.Fatalf("evidence = %+v", tr.Prefixes[0].Evidence)
	}
}

// A name-only claim attributes a new ASN only when the target opts in, and
// marks it name-only; any other claim makes it a full member.
func TestNameOnlyFacts(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	byName := fakeSource{name: "table:names", found: []ASNFact{
		{ASN: 64501, Name: "EXAMPLE", NameOnly: true, Evidence: Evidence{Source: "table:names", Seen: now}},
		{ASN: 64502, Name: "EXAMPLE-2", NameOnly: true, Evidence: Evidence{Source: "table:names", Seen: now}},
	}}
	other := fakeSource{name: "rir", found: []ASNFact{{ASN: 64502, Evidence: Evidence{Source: "rir", Seen: now}}}}
	for _, include := range []bool{false, true} {
		e := &Engine{Sources: []Source{byName, other}, Now: func() time.Time { return now }}
		s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 64500}}, IncludeNameOnly: include}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint32]bool{}
		for _, a := range s.Target("t").ASNs {
			got[a.ASN] = a.NameOnly
		}
		nameOnly, in := got[64501]
		if in != include || include && !nameOnly {
			t.Fatalf("include_name_only=%v: AS64501 attributed=%v name_only=%v", include, in, nameOnly)
		}
		if no, in := got[64502]; !in || no {
			t.Fatalf("include_name_only=%v: AS64502 (also found by the RIR) attributed=%v name_only=%v", include, in, no)
		}
	}
}
