// Command mkrib writes a full-size TABLE_DUMP_V2 RIB dump (RFC 6396) for
// the routing-table benchmark, derived from real tables: the IPv4 prefixes
// and AS paths of the 2002 RIPE RIS RIB and the IPv6 prefixes and 4-byte
// AS paths of the 2016 RIS update file, as bgpdump prints them (the
// expected outputs kept beside the MRT samples). Each real prefix is split
// into more-specifics until the table has the asked number of prefixes;
// every prefix gets one entry per peer, each with a real path of its
// parent prefix led by that peer's AS. The records are written with
// gobgp's MRT encoder, so the file does not depend on asfence's reader.
//
//	go run ./scripts/mkrib -prefixes 1000000 -peers 10 -o rib.gz
//
// With -bird, it writes the same prefixes as BIRD static protocols
// instead (uncompressed; "static4" and "static6", unreachable routes),
// each route with the first real path of its parent prefix in bgp_path
// (AS_SETs left out), for a BIRD that sends a full table fast:
//
//	go run ./scripts/mkrib -prefixes 1000000 -ipv6 0.2 -bird -o statics.conf
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"
)

func main() {
	v4 := flag.String("v4", "asn/tables/testdata/mrt/bview.20020722.2337.gz.bgp.gz", "bgpdump -m output of an IPv4 table")
	v6 := flag.String("v6", "asn/tables/testdata/mrt/updates.20160811.1600.gz.bgp.gz", "bgpdump -m output with IPv6 announcements")
	n := flag.Int("prefixes", 1000000, "prefixes in the dump")
	share6 := flag.Float64("ipv6", 0.15, "share of IPv6 prefixes")
	peers := flag.Int("peers", 10, "peers (entries per prefix)")
	out := flag.String("o", "rib.gz", "output file (gzip)")
	bird := flag.Bool("bird", false, "write BIRD static protocols (uncompressed), not an MRT RIB")
	flag.Parse()
	if *bird {
		if err := runBIRD(*v4, *v6, *n, *share6, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(*v4, *v6, *n, *share6, *peers, *out); err != nil {
		log.Fatal(err)
	}
}

// table maps each real prefix to the distinct AS paths it was seen with.
type table struct {
	prefixes []netip.Prefix
	paths    map[netip.Prefix][]string
}

func readTable(file string, v6 bool) (*table, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	t := &table{paths: map[netip.Prefix][]string{}}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "|")
		if len(fs) < 7 || fs[2] != "A" && fs[2] != "B" {
			continue
		}
		p, err := netip.ParsePrefix(fs[5])
		if err != nil || p.Addr().Is6() != v6 || fs[6] == "" {
			continue
		}
		if _, ok := t.paths[p]; !ok {
			t.prefixes = append(t.prefixes, p)
		}
		if !slices.Contains(t.paths[p], fs[6]) {
			t.paths[p] = append(t.paths[p], fs[6])
		}
	}
	return t, sc.Err()
}

// derive returns n prefixes: the real ones, then their halves, quarters,
// ... (down to /24 or /48) in turn, each with its parent's paths.
func derive(t *table, n, maxBits int) ([]netip.Prefix, map[netip.Prefix]netip.Prefix) {
	parent := map[netip.Prefix]netip.Prefix{}
	out := make([]netip.Prefix, 0, n)
	seen := map[netip.Prefix]bool{}
	for _, p := range t.prefixes {
		if len(out) == n {
			return out, parent
		}
		out, seen[p], parent[p] = append(out, p), true, p
	}
	level := t.prefixes
	for len(out) < n && len(level) > 0 {
		var next []netip.Prefix
		for _, p := range level {
			if p.Bits() >= maxBits {
				continue
			}
			lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
			hi := netip.PrefixFrom(lastHalf(p), p.Bits()+1)
			for _, c := range []netip.Prefix{lo, hi} {
				if seen[c] || len(out) == n {
					continue
				}
				out, seen[c], parent[c] = append(out, c), true, parent[p]
				next = append(next, c)
			}
		}
		level = next
	}
	return out, parent
}

// lastHalf is the address starting the upper half of p.
func lastHalf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bit := p.Bits()
	b[bit/8] |= 0x80 >> (bit % 8)
	a, _ := netip.AddrFromSlice(b)
	return a
}

func parsePath(s string) ([]bgp.AsPathParamInterface, error) {
	var segs []bgp.AsPathParamInterface
	var seq []uint32
	for _, tok := range strings.Fields(s) {
		if strings.HasPrefix(tok, "{") {
			if len(seq) > 0 {
				segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, seq))
				seq = nil
			}
			var set []uint32
			for _, a := range strings.Split(strings.Trim(tok, "{}"), ",") {
				v, err := strconv.ParseUint(a, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("path %q: %w", s, err)
				}
				set = append(set, uint32(v))
			}
			segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SET, set))
			continue
		}
		v, err := strconv.ParseUint(tok, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", s, err)
		}
		seq = append(seq, uint32(v))
	}
	if len(seq) > 0 {
		segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, seq))
	}
	return segs, nil
}

// peerPath leads a real path with the peer's AS instead of the AS that
// led it.
func peerPath(path string, peerAS uint32) string {
	f := strings.Fields(path)
	if len(f) > 0 && !strings.HasPrefix(f[0], "{") {
		f = f[1:]
	}
	return strconv.FormatUint(uint64(peerAS), 10) + " " + strings.Join(f, " ")
}

// prefixes reads both tables and derives n prefixes, share6 of them IPv6.
func prefixes(v4File, v6File string, n int, share6 float64) (t4, t6 *table, p4, p6 []netip.Prefix, par4, par6 map[netip.Prefix]netip.Prefix, err error) {
	if t4, err = readTable(v4File, false); err != nil {
		return
	}
	if t6, err = readTable(v6File, true); err != nil {
		return
	}
	n6 := int(float64(n) * share6)
	p4, par4 = derive(t4, n-n6, 24)
	p6, par6 = derive(t6, n6, 48)
	if len(p4)+len(p6) < n {
		err = fmt.Errorf("only %d + %d prefixes derivable", len(p4), len(p6))
	}
	return
}

// runBIRD writes the prefixes as BIRD static protocols, each route with
// the first real path of its parent in bgp_path (AS_SETs left out).
func runBIRD(v4File, v6File string, n int, share6 float64, out string) error {
	start := time.Now()
	t4, t6, p4, p6, par4, par6, err := prefixes(v4File, v6File, n, share6)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	emit := func(name, channel string, ps []netip.Prefix, parent map[netip.Prefix]netip.Prefix, paths map[netip.Prefix][]string) {
		fmt.Fprintf(bw, "protocol static %s {\n  %s;\n", name, channel)
		for _, p := range ps {
			fmt.Fprintf(bw, "  route %s unreachable {", p)
			asns := strings.Fields(paths[parent[p]][0])
			for i := len(asns) - 1; i >= 0; i-- {
				if !strings.HasPrefix(asns[i], "{") {
					fmt.Fprintf(bw, " bgp_path.prepend(%s);", asns[i])
				}
			}
			bw.WriteString(" };\n")
		}
		bw.WriteString("}\n")
	}
	emit("static4", "ipv4", p4, par4, t4.paths)
	emit("static6", "ipv6", p6, par6, t6.paths)
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkrib: %s: %d IPv4 + %d IPv6 static routes (from %d + %d real prefixes), %s\n",
		out, len(p4), len(p6), len(t4.prefixes), len(t6.prefixes), time.Since(start).Round(time.Second))
	return nil
}

func run(v4File, v6File string, n int, share6 float64, peers int, out string) error {
	start := time.Now()
	t4, t6, p4, p6, par4, par6, err := prefixes(v4File, v6File, n, share6)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	const ts = 1700000000
	var mrtPeers []*mrt.Peer
	peerAS := make([]uint32, peers)
	for i := range peers {
		peerAS[i] = 64496 + uint32(i)
		if i%2 == 1 {
			peerAS[i] = 4200000000 + uint32(i) // 4-byte peer ASNs
		}
		mrtPeers = append(mrtPeers, mrt.NewPeer(fmt.Sprintf("192.0.2.%d", i+1), fmt.Sprintf("192.0.2.%d", i+1), peerAS[i], true))
	}
	if err := write(zw, ts, mrt.TABLE_DUMPv2, mrt.PEER_INDEX_TABLE, mrt.NewPeerIndexTable("192.0.2.254", "bench", mrtPeers)); err != nil {
		return err
	}
	pathCache := map[string][]bgp.AsPathParamInterface{}
	seq := uint32(0)
	emit := func(ps []netip.Prefix, parent map[netip.Prefix]netip.Prefix, paths map[netip.Prefix][]string, v6 bool) error {
		for _, p := range ps {
			real := paths[parent[p]]
			var entries []*mrt.RibEntry
			for i := range peers {
				ps := peerPath(real[i%len(real)], peerAS[i])
				segs, ok := pathCache[ps]
				if !ok {
					var err error
					if segs, err = parsePath(ps); err != nil {
						return err
					}
					if len(pathCache) < 1<<20 {
						pathCache[ps] = segs
					}
				}
				attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(segs)}
				if v6 {
					attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(fmt.Sprintf("2001:db8::%x", i+1), nil))
				} else {
					attrs = append(attrs, bgp.NewPathAttributeNextHop(fmt.Sprintf("192.0.2.%d", i+1)))
				}
				entries = append(entries, mrt.NewRibEntry(uint16(i), ts-uint32(i)*3600, 0, attrs, false))
			}
			var nlri bgp.AddrPrefixInterface
			sub := mrt.RIB_IPV4_UNICAST
			if v6 {
				nlri, sub = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String()), mrt.RIB_IPV6_UNICAST
			} else {
				nlri = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
			}
			if err := write(zw, ts, mrt.TABLE_DUMPv2, sub, mrt.NewRib(seq, nlri, entries)); err != nil {
				return err
			}
			seq++
		}
		return nil
	}
	if err := emit(p4, par4, t4.paths, false); err != nil {
		return err
	}
	if err := emit(p6, par6, t6.paths, true); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	st, _ := f.Stat()
	fmt.Fprintf(os.Stderr, "mkrib: %s: %d IPv4 + %d IPv6 prefixes x %d peers (from %d + %d real prefixes), %d MB gzip, %s\n",
		out, len(p4), len(p6), peers, len(t4.prefixes), len(t6.prefixes), st.Size()>>20, time.Since(start).Round(time.Second))
	return nil
}

func write(w io.Writer, ts uint32, t mrt.MRTType, sub mrt.MRTSubTyper, body mrt.Body) error {
	m, err := mrt.NewMRTMessage(ts, t, sub, body)
	if err != nil {
		return err
	}
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
