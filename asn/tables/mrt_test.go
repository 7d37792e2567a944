package tables

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"
)

// bgpdumpRoute is what bgpdump's one-line output says about one (prefix,
// origin): the peers that carried it and the first and last time.
type bgpdumpRoute struct {
	peers       []string
	first, last uint32
}

type routeKey struct {
	prefix netip.Prefix
	origin uint32
}

// bgpdumpTable is bgpdump -m output reduced by the same origin rule:
// routes by (prefix, origin), and the count of routes without an origin.
type bgpdumpTable struct {
	routes   map[routeKey]*bgpdumpRoute
	noOrigin int
	lines    int
}

// lineOrigin applies the origin rule to bgpdump's AS path text: the last
// AS, unless the path ends in an AS_SET "{...}" or a confederation segment
// "(...)" / "[...]", or is empty.
func lineOrigin(path string) (uint32, bool) {
	f := strings.Fields(path)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[len(f)-1], 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// readBgpdump parses bgpdump -m (or -m -t change) output.
func readBgpdump(t testing.TB, r *bufio.Scanner) *bgpdumpTable {
	t.Helper()
	bt := &bgpdumpTable{routes: map[routeKey]*bgpdumpRoute{}}
	for r.Scan() {
		f := strings.Split(r.Text(), "|")
		if len(f) < 3 || f[2] != "A" && f[2] != "B" {
			continue // withdrawals, state changes
		}
		bt.lines++
		pathField := 6
		if f[0] == "TABLE_DUMP2_AP" || strings.HasSuffix(f[0], "_AP") {
			pathField = 7 // the path identifier comes first
		}
		p, err := netip.ParsePrefix(f[5])
		if err != nil {
			t.Fatalf("bgpdump line %q: %v", r.Text(), err)
		}
		ts, err := strconv.ParseUint(strings.SplitN(f[1], ".", 2)[0], 10, 32)
		if err != nil {
			t.Fatalf("bgpdump line %q: %v", r.Text(), err)
		}
		origin, ok := lineOrigin(f[pathField])
		if !ok {
			bt.noOrigin++
			continue
		}
		k := routeKey{p.Masked(), origin}
		br := bt.routes[k]
		if br == nil {
			br = &bgpdumpRoute{first: uint32(ts), last: uint32(ts)}
			bt.routes[k] = br
		}
		if peer := f[3] + "|" + f[4]; !slices.Contains(br.peers, peer) {
			br.peers = append(br.peers, peer)
		}
		br.first, br.last = min(br.first, uint32(ts)), max(br.last, uint32(ts))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return bt
}

// bgpdumpFiles caches the parsed expected outputs: several tests read the
// same ones (the largest has 577k lines). The tables are read-only.
var bgpdumpFiles sync.Map

func readBgpdumpFile(t testing.TB, path string) *bgpdumpTable {
	t.Helper()
	if bt, ok := bgpdumpFiles.Load(path); ok {
		return bt.(*bgpdumpTable)
	}
	bt := parseBgpdumpFile(t, path)
	bgpdumpFiles.Store(path, bt)
	return bt
}

func parseBgpdumpFile(t testing.TB, path string) *bgpdumpTable {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	return readBgpdump(t, sc)
}

// scanFile scans a table file with a source of the given format.
func scanFile(t testing.TB, format Format, path string) (*Source, *Index, error) {
	t.Helper()
	s, err := New(Options{Format: format, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := s.load(context.Background())
	return s, x, err
}

// The origins asfence reads from each real MRT file are exactly those of
// bgpdump's expected output beside it (RIPE-NCC/bgpdump's regression
// tests): every (prefix, origin) pair, the number of peers that carried
// it, and the last time it was seen (updates: the first too); routes whose
// path ends in an AS_SET have no origin in both.
func TestMRTOriginsEqualBgpdump(t *testing.T) {
	files, _ := filepath.Glob("testdata/mrt/*.gz")
	n := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".bgp.gz") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			want := readBgpdumpFile(t, file+".bgp.gz")
			// bgpdump -m prints multicast announcements (SAFI 2 in
			// MP_REACH_NLRI) like unicast ones; asfence reads unicast
			// routes only. gobgp's decoder tells which prefixes were
			// only ever announced as multicast.
			mc := multicastOnly(t, file)
			if name := filepath.Base(file); name == "updates.20070211.0141.gz" && len(mc) != 2 || name != "updates.20070211.0141.gz" && len(mc) != 0 {
				t.Fatalf("multicast-only prefixes: %v", mc)
			}
			_, x, err := scanFile(t, MRT, file)
			if filepath.Base(file) == "updates.nlri_mask_trailing_bits.gz" {
				// Its one UPDATE ends in a prefix cut short (a /11 with no
				// bytes left). bgpdump prints the prefix before it and
				// drops the cut one; gobgp (RFC 7606: an NLRI that cannot
				// be parsed spoils the message) rejects the message, so
				// asfence skips the record and says where.
				if err == nil || !strings.Contains(err.Error(), "byte offset 0: BGP4MP MESSAGE record: BGP UPDATE: network bytes is short") || x.Len() != 0 || x.Stats.Bad != 1 {
					t.Fatalf("damaged update: err %v, %d routes", err, x.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			got := map[routeKey]*route{}
			for i := range x.routes.n {
				r := x.routes.at(i)
				got[routeKey{r.prefix(), r.origin}] = r
			}
			missing, extra := 0, 0
			for k, w := range want.routes {
				if mc[k.prefix] {
					continue
				}
				r := got[k]
				if r == nil {
					if missing++; missing <= 5 {
						t.Errorf("bgpdump has %s origin AS%d (%d peers), asfence not", k.prefix, k.origin, len(w.peers))
					}
					continue
				}
				if int(r.peers) != len(w.peers) || r.last != w.last {
					t.Errorf("%s AS%d: asfence %d peers, last %d; bgpdump %d peers, last %d", k.prefix, k.origin, r.peers, r.last, len(w.peers), w.last)
				}
				if x.Stats.RIBRecords == 0 && r.first != w.first {
					t.Errorf("%s AS%d: first seen %d, bgpdump %d", k.prefix, k.origin, r.first, w.first)
				}
			}
			for k := range got {
				if want.routes[k] == nil {
					if extra++; extra <= 5 {
						t.Errorf("asfence has %s origin AS%d, bgpdump not", k.prefix, k.origin)
					}
				}
			}
			if missing+extra > 0 || len(got) != len(want.routes)-len(mc) {
				t.Fatalf("%d routes missing, %d extra, of %d", missing, extra, len(want.routes)-len(mc))
			}
			if int(x.Stats.NoOrigin) != want.noOrigin {
				t.Errorf("routes without origin: asfence %d, bgpdump %d", x.Stats.NoOrigin, want.noOrigin)
			}
			t.Logf("%d routes, %d without origin, %d records, %d peers", x.Len(), x.Stats.NoOrigin, x.Stats.Records, x.Stats.Peers)
		})
	}
	if n < 11 {
		t.Fatalf("only %d MRT samples", n)
	}
}

// A few origins by name, through the resolver interface: an origin
// whose routes end in an AS_SET elsewhere, a 4-byte ASN, AS_TRANS, an
// ADD-PATH RIB and a 2-byte update whose AS4_PATH gives the origin.
func TestMRTNamedOrigins(t *testing.T) {
	expected := map[string]*bgpdumpTable{}
	scanned := map[string]*Source{}
	prefixesOf := func(file string, origin uint32) []string {
		if expected[file] == nil {
			expected[file] = readBgpdumpFile(t, file+".bgp.gz")
		}
		var out []string
		for k := range expected[file].routes {
			if k.origin == origin {
				out = append(out, k.prefix.String())
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		file   string
		origin uint32
		min    int
		why    string
	}{
		{"bview.20020722.2337.gz", 3633, 1, "AS3633 is the AS_SET {3633} at the end of 147 paths: those are no origin"},
		{"bview.20020722.2337.gz", 271, 1, "AS271 comes right before {3633} in those paths"},
		{"bview.20020722.2337.gz", 701, 100, "AS701 also appears inside AS_SETs"},
		{"updates.20160811.1600.gz", 135310, 1, "4-byte ASN"},
		{"updates.20160811.1600.gz", 28573, 1, ""},
		{"updates.et-header.2015.gz", 23456, 1, "AS_TRANS at the end of 4-byte paths (BGP4MP_ET)"},
		{"updates.20100722.2015.gz", 8452, 1, ""},
		{"updates.20100722.2015.gz", 262685, 1, "10 of its 2-byte MESSAGE records end in AS_TRANS: the origin comes from AS4_PATH (RFC 6793)"},
		{"bview.ipv4_unicast_add_path.gz", 65011, 1, "ADD-PATH RIB, several paths per peer"},
		{"bview.ipv6_unicast_add_path.gz", 65011, 1, "ADD-PATH RIB, IPv6"},
		{"bview.64k_stream_overflow.gz", 22773, 1, "a 70 KB record"},
	} {
		file := filepath.Join("testdata/mrt", tc.file)
		want := prefixesOf(file, tc.origin)
		s := scanned[file]
		if s == nil {
			var err error
			if s, _, err = scanFile(t, MRT, file); err != nil {
				t.Fatal(err)
			}
			scanned[file] = s
		}
		facts, err := s.Resolve(context.Background(), nil, []uint32{tc.origin})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range facts.Prefixes {
			if f.Origin != tc.origin || f.Evidence.Source != "table:mrt:"+strings.TrimSuffix(tc.file, ".gz") || !strings.HasPrefix(f.Evidence.Detail, tc.file+": origin AS") {
				t.Fatalf("%s AS%d: fact %+v", tc.file, tc.origin, f)
			}
			got = append(got, f.Prefix.String())
		}
		slices.Sort(got)
		if len(want) < tc.min || !slices.Equal(got, want) {
			t.Errorf("%s AS%d (%s): asfence %d prefixes, bgpdump %d\n%v\n%v", tc.file, tc.origin, tc.why, len(got), len(want), got, want)
		}
	}
}

// In a TABLE_DUMP RIB dump the first time of a route is the earliest
// originated time of its entries: bgpdump -t change prints those times.
// (For TABLE_DUMP_V2 bgpdump 1.6.2 prints a dangling value, 0 here; the
// gobgp cross-check below covers those.)
func TestMRTRIBFirstSeenEqualsBgpdumpChangeTimes(t *testing.T) {
	bin, err := exec.LookPath("bgpdump")
	if err != nil {
		t.Skip("bgpdump not installed (make deps installs it)")
	}
	for _, name := range []string{"bview.20020722.2337.gz"} {
		file := filepath.Join("testdata/mrt", name)
		out, err := exec.Command(bin, "-q", "-m", "-t", "change", file).Output()
		if err != nil {
			t.Fatalf("bgpdump: %v", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		want := readBgpdump(t, sc)
		_, x, err := scanFile(t, MRT, file)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for i := range x.routes.n {
			r := x.routes.at(i)
			w := want.routes[routeKey{r.prefix(), r.origin}]
			if w == nil {
				t.Fatalf("%s: %s AS%d not in bgpdump -t change", name, r.prefix(), r.origin)
			}
			if wf := min(w.first, r.last); r.first != wf {
				t.Fatalf("%s: %s AS%d first seen %d, bgpdump -t change %d", name, r.prefix(), r.origin, r.first, w.first)
			}
			checked++
		}
		if checked == 0 {
			t.Fatalf("%s: nothing checked", name)
		}
	}
}

func Example_lineOrigin() {
	for _, p := range []string{"1853 1239 3549 21947 {25995}", "3333 2914 22773", "", "1 (2 3)"} {
		o, ok := lineOrigin(p)
		fmt.Println(o, ok)
	}
	// Output:
	// 0 false
	// 22773 true
	// 0 false
	// 0 false
}

// readRecords returns the decompressed MRT records of a file.
func readRecords(t testing.TB, file string) []mrtRecord {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out []mrtRecord
	for len(data) >= mrt.MRT_COMMON_HEADER_LEN {
		var h mrt.MRTHeader
		if err := h.DecodeFromBytes(data); err != nil {
			t.Fatal(err)
		}
		end := mrt.MRT_COMMON_HEADER_LEN + int(h.Len)
		out = append(out, mrtRecord{h, data[mrt.MRT_COMMON_HEADER_LEN:end]})
		data = data[end:]
	}
	return out
}

type mrtRecord struct {
	h    mrt.MRTHeader
	body []byte
}

// multicastOnly decodes every BGP4MP UPDATE of a file with gobgp and
// returns the prefixes announced as multicast (SAFI 2) and never as
// unicast.
func multicastOnly(t testing.TB, file string) map[netip.Prefix]bool {
	uni, multi := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for _, r := range readRecords(t, file) {
		if r.h.Type != mrt.BGP4MP {
			continue
		}
		m, err := mrt.ParseMRTBody(&r.h, r.body)
		if err != nil {
			continue
		}
		bm, ok := m.Body.(*mrt.BGP4MPMessage)
		if !ok {
			continue
		}
		u, ok := bodyOf(bm.BGPMessage)
		if !ok {
			continue
		}
		for _, p := range u.NLRI {
			uni[netip.PrefixFrom(netip.AddrFrom4([4]byte(p.Prefix.To4())), int(p.Length))] = true
		}
		for _, a := range u.PathAttributes {
			mp, ok := a.(*bgp.PathAttributeMpReachNLRI)
			if !ok {
				continue
			}
			for _, v := range mp.Value {
				var ps []netip.Prefix
				switch p := v.(type) {
				case *bgp.IPAddrPrefix:
					ps = appendPrefix(ps, p.Prefix, p.Length)
				case *bgp.IPv6AddrPrefix:
					ps = appendPrefix(ps, p.Prefix, p.Length)
				}
				for _, p := range ps {
					if mp.SAFI == bgp.SAFI_MULTICAST {
						multi[p] = true
					} else {
						uni[p] = true
					}
				}
			}
		}
	}
	for p := range multi {
		if uni[p] {
			delete(multi, p)
		}
	}
	return multi
}

// The RIB entries asfence walks itself read as gobgp's Rib decoder reads
// them: for every TABLE_DUMP_V2 RIB record of the real samples, the same
// (prefix, origin) pairs, peer counts and first-seen (originated) times.
func TestRIBWalkerAgreesWithGobgp(t *testing.T) {
	for _, name := range []string{"bview.64k_stream_overflow.gz", "bview.ipv4_unicast_add_path.gz", "bview.ipv6_unicast_add_path.gz"} {
		file := filepath.Join("testdata/mrt", name)
		want := map[routeKey]*route{}
		peers := map[routeKey]map[uint16]bool{}
		for _, r := range readRecords(t, file) {
			m, err := mrt.ParseMRTBody(&r.h, r.body)
			if err != nil {
				t.Fatalf("%s: gobgp: %v", name, err)
			}
			rib, ok := m.Body.(*mrt.Rib)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(rib.Prefix.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rib.Entries {
				var origin uint32
				for _, a := range e.PathAttributes {
					if ap, ok := a.(*bgp.PathAttributeAsPath); ok && len(ap.Value) > 0 {
						last := ap.Value[len(ap.Value)-1]
						if last.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_SEQ {
							as := last.GetAS()
							origin = as[len(as)-1]
						}
					}
				}
				if origin == 0 {
					continue
				}
				k := routeKey{p, origin}
				w := want[k]
				if w == nil {
					w = &route{first: since(e.OriginatedTime, r.h.Timestamp), last: r.h.Timestamp}
					want[k], peers[k] = w, map[uint16]bool{}
				}
				w.first = min(w.first, since(e.OriginatedTime, r.h.Timestamp))
				peers[k][e.PeerIndex] = true
			}
		}
		_, x, err := scanFile(t, MRT, file)
		if err != nil {
			t.Fatal(err)
		}
		if x.Len() != len(want) || len(want) == 0 {
			t.Fatalf("%s: %d routes, gobgp %d", name, x.Len(), len(want))
		}
		for i := range x.routes.n {
			r := x.routes.at(i)
			k := routeKey{r.prefix(), r.origin}
			w := want[k]
			if w == nil || r.first != w.first || r.last != w.last || int(r.peers) != len(peers[k]) {
				t.Fatalf("%s: %s AS%d: asfence first %d last %d peers %d; gobgp %+v %d peers", name, k.prefix, k.origin, r.first, r.last, r.peers, w, len(peers[k]))
			}
		}
	}
}
