package tables

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// originsOf returns, per origin, the prefixes the index holds.
func originsOf(x *Index) map[uint32][]netip.Prefix {
	out := map[uint32][]netip.Prefix{}
	for i := range x.routes.n {
		r := x.routes.at(i)
		out[r.origin] = append(out[r.origin], r.prefix())
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// The real CAIDA prefix2as excerpts: every line's origins, MOAS ("_")
// lines giving each origin, AS sets (",") none.
func TestPfx2as(t *testing.T) {
	for _, file := range []string{"testdata/pfx2as/RouteViewIPv4.pfx2as.excerpt.gz", "testdata/pfx2as/RouteViewIPv6.pfx2as.excerpt"} {
		_, x, err := scanFile(t, Pfx2as, file)
		if err != nil {
			t.Fatal(err)
		}
		want := map[uint32][]netip.Prefix{}
		sets, moas := 0, 0
		lines := readLines(t, file)
		for _, l := range lines {
			f := strings.Split(l, "\t")
			p := netip.MustParsePrefix(f[0] + "/" + f[1])
			if strings.Contains(f[2], "_") {
				moas++
			}
			for _, part := range strings.Split(f[2], "_") {
				if strings.Contains(part, ",") {
					sets++
					continue
				}
				a, _ := parseASN(part)
				want[a] = append(want[a], p)
			}
		}
		got := originsOf(x)
		if len(got) != len(want) || moas == 0 || sets == 0 {
			t.Fatalf("%s: %d origins, want %d (%d MOAS lines, %d AS sets)", file, len(got), len(want), moas, sets)
		}
		for a, ps := range want {
			slices.SortFunc(ps, asn.ComparePrefix)
			if !slices.Equal(got[a], slices.Compact(ps)) {
				t.Fatalf("%s: AS%d: %v, want %v", file, a, got[a], ps)
			}
		}
		if int(x.Stats.NoOrigin) != sets || x.Stats.Records != int64(len(lines)) {
			t.Fatalf("%s: stats %+v, want %d AS sets of %d lines", file, x.Stats, sets, len(lines))
		}
	}
	// Named lines of the IPv4 excerpt.
	s, x, _ := scanFile(t, Pfx2as, "testdata/pfx2as/RouteViewIPv4.pfx2as.excerpt.gz")
	o := originsOf(x)
	for _, tc := range []struct {
		asn    uint32
		prefix string
		want   bool
	}{
		{13335, "1.0.0.0/24", true},
		{71, "16.105.113.0/24", false}, // "71,4445,7430,21302": an AS set, no origin
		{31133, "31.173.0.0/16", true}, // "31133_6854,25159,...": MOAS with an AS set
		{6854, "31.173.0.0/16", false},
		{45090, "", true}, // Tencent
	} {
		has := len(o[tc.asn]) > 0
		if tc.prefix != "" {
			has = slices.Contains(o[tc.asn], netip.MustParsePrefix(tc.prefix))
		}
		if has != tc.want {
			t.Errorf("AS%d %s: %v, want %v", tc.asn, tc.prefix, has, tc.want)
		}
	}
	f, err := s.Resolve(context.Background(), nil, []uint32{45090})
	if err != nil || len(f.Prefixes) != len(o[45090]) || f.Prefixes[0].Evidence.Source != "table:pfx2as:RouteViewIPv4.pfx2as.excerpt" {
		t.Fatalf("resolve: %d facts, %v", len(f.Prefixes), err)
	}
}

// bgp.tools' table.jsonl: each line a route, Hits its peer count, several
// lines for a prefix with several origins.
func TestBGPTools(t *testing.T) {
	file := "testdata/bgptools/table.ipv6.excerpt.jsonl"
	s, x, err := scanFile(t, BGPTools, file)
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, file)
	if x.Len() != len(lines) || x.Len() != 81 {
		t.Fatalf("%d routes of %d lines", x.Len(), len(lines))
	}
	var origins []uint32
	x.within(netip.MustParsePrefix("2a00:1c3e:96::/47"), func(r *route) {
		if r.prefix().Bits() == 47 && r.prefix().Addr() == netip.MustParseAddr("2a00:1c3e:96::") {
			origins = append(origins, r.origin)
			if r.origin == 50611 && r.peers != 2471 {
				t.Errorf("AS50611 hits %d", r.peers)
			}
		}
	})
	if !slices.Equal(origins, []uint32{8561, 48519, 50611}) {
		t.Fatalf("MOAS origins %v", origins)
	}
	f, err := s.Resolve(context.Background(), nil, []uint32{35699})
	if err != nil || len(f.Prefixes) != 6 || !strings.Contains(f.Prefixes[0].Evidence.Detail, "seen by 3468 bgp.tools peers") {
		t.Fatalf("AS35699: %+v %v", f.Prefixes, err)
	}
}

// iptoasn and ip-location-db range tables: each range is covered exactly
// by its CIDRs (every address of a range, first, last and between, maps to
// the range's ASN), unrouted ranges (ASN 0) are left out, and the
// organisation names discover ASNs only as name-only claims.
func TestIP2ASN(t *testing.T) {
	for _, tc := range []struct {
		file  string
		lines int
	}{
		{"testdata/ip2asn/iptoasn-v4.first-rows.tsv", 20},
		{"testdata/ip2asn/iptoasn-v6.first-rows.tsv", 20},
		{"testdata/ip2asn/asn-db-ip2asn-v4.tsv.xz", 1427},
		{"testdata/ip2asn/ip-location-db-asn-ipv4.excerpt.csv.bz2", 377},
		{"testdata/ip2asn/ip-location-db-asn-ipv6.excerpt.csv", 135},
	} {
		_, x, err := scanFile(t, IP2ASN, tc.file)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if x.Stats.Records != int64(tc.lines) || x.Len() == 0 {
			t.Fatalf("%s: %+v", tc.file, x.Stats)
		}
		rows := rangeRows(t, tc.file)
		if len(rows) != tc.lines {
			t.Fatalf("%s: %d rows", tc.file, len(rows))
		}
		unrouted := 0
		for _, row := range rows {
			if row.asn == 0 {
				unrouted++
			}
			for _, a := range []netip.Addr{row.rng.From(), row.rng.To(), mid(row.rng)} {
				got := lookup(x, a)
				if row.asn == 0 && got != 0 || row.asn != 0 && got != row.asn {
					// Overlapping rows (a more specific range inside a
					// wider one) are not in these samples.
					t.Fatalf("%s: %s in %s: AS%d, want AS%d", tc.file, a, row.rng, got, row.asn)
				}
			}
		}
		if int(x.Stats.Skipped) != unrouted {
			t.Fatalf("%s: %d unrouted skipped, %d in the file", tc.file, x.Stats.Skipped, unrouted)
		}
	}

	// Organisation names: ip-location-db names ByteDance's and TikTok's
	// ASNs; discovery by name is a name-only claim.
	s, _, err := scanFile(t, IP2ASN, "testdata/ip2asn/ip-location-db-asn-ipv4.excerpt.csv.bz2")
	if err != nil {
		t.Fatal(err)
	}
	tg := &asn.Target{Name: "bytedance", Names: []string{"Bytedance", "TikTok"}}
	found, err := s.Discover(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	byASN := map[uint32]asn.ASNFact{}
	for _, f := range found {
		if !f.NameOnly {
			t.Fatalf("not a name-only claim: %+v", f)
		}
		byASN[f.ASN] = f
	}
	if _, ok := byASN[396986]; !ok {
		t.Fatalf("AS396986 (Bytedance Inc.) not found by name: %+v", found)
	}
	if f, ok := byASN[11983]; !ok || !strings.Contains(f.Evidence.Detail, `"Tiktok U.S. Data Security Inc."`) {
		t.Fatalf("AS11983: %+v", f)
	}
	for a, f := range byASN {
		if !strings.Contains(strings.ToLower(f.Evidence.Detail), "bytedance") && !strings.Contains(strings.ToLower(f.Evidence.Detail), "tiktok") {
			t.Fatalf("AS%d matched on %q", a, f.Evidence.Detail)
		}
	}
	// Names match on word boundaries: "Lark" is not "Clark".
	if f, _ := s.Discover(context.Background(), &asn.Target{Name: "x", Names: []string{"Lark"}}); slices.ContainsFunc(f, func(f asn.ASNFact) bool { return strings.Contains(f.Evidence.Detail, "Clark") }) {
		t.Fatalf("Lark matched Clark: %+v", f)
	}
	facts, err := s.Resolve(context.Background(), tg, []uint32{396986})
	if err != nil || len(facts.Prefixes) == 0 || len(facts.ASNs) != 1 || facts.ASNs[0].Name != "Bytedance" {
		t.Fatalf("resolve AS396986: %+v %v", facts, err)
	}
	if !strings.Contains(facts.Prefixes[0].Evidence.Detail, `origin AS396986 "Bytedance Inc."`) {
		t.Fatalf("evidence %+v", facts.Prefixes[0].Evidence)
	}
}

type rangeRow struct {
	rng netipx.IPRange
	asn uint32
}

// rangeRows reads the ranges of a sample independently (decompressing
// with the package's reader).
func rangeRows(t *testing.T, file string) []rangeRow {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := fetch.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []rangeRow
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		sep := "\t"
		if !strings.Contains(sc.Text(), "\t") {
			sep = ","
		}
		fs := strings.SplitN(sc.Text(), sep, 4)
		lo, err1 := parseRangeAddr(fs[0])
		hi, err2 := parseRangeAddr(fs[1])
		a, err3 := parseASN(fs[2])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("%s: %q", file, sc.Text())
		}
		out = append(out, rangeRow{netipx.IPRangeFrom(lo, hi), a})
	}
	return out
}

func mid(r netipx.IPRange) netip.Addr {
	p := r.Prefixes()
	return p[len(p)/2].Addr()
}

// lookup returns the origin of the most specific route covering a (0 for
// none).
func lookup(x *Index, a netip.Addr) uint32 {
	var best *route
	for bits := a.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(a, bits).Masked()
		x.within(p, func(r *route) {
			if best == nil && r.prefix() == p {
				best = r
			}
		})
		if best != nil {
			return best.origin
		}
	}
	return 0
}

// A range table round-trips: ranges → minimal CIDR covers → ranges, for
// the real rows and for random ranges of both families.
func TestRangeCIDRRoundTrip(t *testing.T) {
	var ranges []netipx.IPRange
	for _, file := range []string{"testdata/ip2asn/iptoasn-v4.first-rows.tsv", "testdata/ip2asn/iptoasn-v6.first-rows.tsv",
		"testdata/ip2asn/asn-db-ip2asn-v4.tsv.xz", "testdata/ip2asn/ip-location-db-asn-ipv6.excerpt.csv"} {
		for _, r := range rangeRows(t, file) {
			ranges = append(ranges, r.rng)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var a, b [16]byte
		for i := range a {
			a[i], b[i] = byte(rnd.Uint32()), byte(rnd.Uint32())
		}
		lo, hi := netip.AddrFrom16(a), netip.AddrFrom16(b)
		if rnd.IntN(2) == 0 {
			lo, hi = netip.AddrFrom4([4]byte(a[:4])), netip.AddrFrom4([4]byte(b[:4]))
		}
		if hi.Less(lo) {
			lo, hi = hi, lo
		}
		ranges = append(ranges, netipx.IPRangeFrom(lo, hi))
	}
	for _, rng := range ranges {
		ps := rangeCIDRs(rng)
		back, ok := cidrsRange(ps)
		if !ok || back != rng {
			t.Fatalf("%s → %v → %s", rng, ps, back)
		}
		// Minimal: no two neighbours could merge into their parent.
		for i := 1; i < len(ps); i++ {
			if ps[i-1].Bits() == ps[i].Bits() {
				if par, _ := ps[i-1].Addr().Prefix(ps[i-1].Bits() - 1); par.Addr() == ps[i-1].Addr() && par.Contains(ps[i].Addr()) {
					t.Fatalf("%s: %s and %s could be one prefix", rng, ps[i-1], ps[i])
				}
			}
		}
	}
}

// Evidence time: the configured data date, else the file's time.
func TestSeenOfTablesWithoutTimes(t *testing.T) {
	seen := time.Date(2020, 2, 21, 0, 0, 0, 0, time.UTC)
	s, err := New(Options{Format: Pfx2as, Path: "testdata/pfx2as/RouteViewIPv6.pfx2as.excerpt", Source: "caida", Seen: seen})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Resolve(context.Background(), nil, []uint32{45090})
	if err != nil || len(f.Prefixes) == 0 || !f.Prefixes[0].Evidence.Seen.Equal(seen) || f.Prefixes[0].Evidence.Source != "table:caida" || s.Name() != "table:caida" {
		t.Fatalf("%+v %v", f.Prefixes, err)
	}
}
