package sources

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

const table2002 = "../tables/testdata/mrt/bview.20020722.2337.gz"

// A prefix registered to a target (a list without origins, standing in
// for a registration) inside which the real 2002 RIS table shows routes
// originated by AS7633, not a target ASN: AS7633 is recorded as the
// prefix's upstream with the table's evidence, and neither becomes a
// target ASN nor enters the origin (AS-path) filter; the prefix itself is
// blocked. Routes inside it originated by the target's AS16924 are the
// target's own prefixes.
func TestTableUpstreamOfRegisteredPrefix(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registered.txt")
	if err := os.WriteFile(reg, []byte("12.10.208.0/20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{
		Files:  []FileConfig{{Format: "cidr", Path: reg, Target: "t", Source: "whois:test"}},
		Tables: []TableConfig{{Format: "mrt", Path: table2002, Source: "rrc00"}},
	}
	if err := Validate(c, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	targets := []asn.Target{{Name: "t", ASNs: []asn.SeedASN{{ASN: 16924}}}}
	snap, names, err := Resolve(context.Background(), c, targets, asn.Engine{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"whois:test:" + reg, "table:rrc00"}) || len(snap.Incomplete) != 0 {
		t.Fatalf("sources %v, incomplete %+v", names, snap.Incomplete)
	}
	tr := snap.Target("t")
	byPrefix := map[netip.Prefix]asn.Prefix{}
	for _, p := range tr.Prefixes {
		byPrefix[p.Prefix] = p
	}
	regP := byPrefix[netip.MustParsePrefix("12.10.208.0/20")]
	if len(regP.Origins) != 0 || !slices.Equal(regP.Upstreams, []uint32{7633}) {
		t.Fatalf("registered prefix: %+v", regP)
	}
	var upstreamEv *asn.Evidence
	for i, ev := range regP.Evidence {
		if ev.Source == "table:rrc00" {
			upstreamEv = &regP.Evidence[i]
		}
	}
	if upstreamEv == nil || !strings.Contains(upstreamEv.Detail, "originated by AS7633, not a target ASN (upstream): route 12.10.208.0/24 inside it, bview.20020722.2337.gz: origin AS7633, carried by") ||
		!strings.Contains(upstreamEv.Detail, "and 1 more route(s)") || !upstreamEv.Seen.Equal(time.Date(2002, 7, 22, 23, 37, 35, 0, time.UTC)) {
		t.Fatalf("upstream evidence: %+v", regP.Evidence)
	}
	for _, own := range []string{"12.10.217.0/24", "12.10.218.0/24"} {
		if p := byPrefix[netip.MustParsePrefix(own)]; !slices.Equal(p.Origins, []uint32{16924}) || p.Upstreams != nil {
			t.Fatalf("%s: %+v", own, p)
		}
	}
	var asns []uint32
	for _, a := range tr.ASNs {
		asns = append(asns, a.ASN)
	}
	if !slices.Equal(asns, []uint32{16924}) {
		t.Fatalf("target ASNs %v", asns)
	}

	// The policy: the AS-path filter has the target's ASN only, the
	// registered prefix is in the prefix lists.
	pol, err := policy.PolicyConfig{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := pol.Apply(snap)
	if got := in.ASNs("t"); !slices.Equal(got, []uint32{16924}) {
		t.Fatalf("origin filter ASNs %v: the upstream leaked into it", got)
	}
	if !slices.Contains(in.Exact("t", prefixset.IPv4), netip.MustParsePrefix("12.10.208.0/20")) {
		t.Fatalf("registered prefix not blocked: %v", in.Exact("t", prefixset.IPv4))
	}
}

func TestValidateTables(t *testing.T) {
	c := &Config{Tables: []TableConfig{
		{Format: "mrt", URL: "https://data.ris.ripe.net/rrc00/latest-bview.gz", Source: "ris-rrc00"},
		{Format: "bgptools", URL: "https://bgp.tools/table.jsonl"},
		{Format: "csv", Path: "x"},
		{Format: "pfx2as"},
		{Format: "mrt", Path: "a", Source: "ris-rrc00", Timeout: -1},
		{Format: "ip2asn", Path: "b", Source: "has space", UserAgent: "a\nb"},
	}}
	var got []string
	for _, e := range field.Errors(Validate(c, nil)) {
		got = append(got, e.Path+": "+e.Msg)
	}
	want := []string{
		`tables[1].user_agent: bgp.tools asks every client for a User-Agent naming it and a contact`,
		`tables[2].format: unknown format "csv" (use mrt, pfx2as, ip2asn, bgptools)`,
		`tables[3]: set path or url`,
		`tables[4].source: the same source as tables[0]`,
		`tables[4].timeout: must not be negative`,
		`tables[5].source: invalid source name "has space"`,
		`tables[5].user_agent: must be one line`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestBuildTables(t *testing.T) {
	c := &Config{CacheDir: t.TempDir(), Tables: []TableConfig{
		{Format: "mrt", URL: "https://data.ris.ripe.net/rrc00/latest-bview.gz"},
		{Format: "bgptools", URL: "https://bgp.tools/table.jsonl", UserAgent: "example-net asfence - noc@example.net"},
		{Format: "pfx2as", Path: "../tables/testdata/pfx2as/RouteViewIPv6.pfx2as.excerpt"},
	}}
	srcs, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name())
	}
	if !slices.Equal(names, []string{"table:mrt:latest-bview", "table:bgptools:table.jsonl", "table:pfx2as:RouteViewIPv6.pfx2as.excerpt"}) {
		t.Fatalf("names %v", names)
	}
	if _, err := Build(&Config{Tables: []TableConfig{{Format: "mrt", Path: "/nonexistent/rib.gz"}}}); err == nil || !strings.HasPrefix(err.Error(), "sources.tables[0]: table:mrt:rib: stat /nonexistent/rib.gz") {
		t.Fatalf("missing file: %v", err)
	}
}
