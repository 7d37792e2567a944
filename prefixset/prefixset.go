// Package prefixset is the prefix-set algebra of asfence: route-filter
// ranges (exact routes and their more-specifics collapsed with ge/le, as
// bgpq4 -A does), address coverage, subtraction, overlap and bogon checks,
// and the address family of a prefix. Every function is pure and works on
// netip values.
package prefixset

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/asfence/asfence/asn"
)

// Range is a route-filter entry: it matches every route inside Prefix whose
// length is between Ge and Le inclusive (Cisco "ge/le", Junos "upto" and
// "prefix-length-range"). Ge == Le == Prefix.Bits() is an exact match.
type Range struct {
	Prefix netip.Prefix
	Ge, Le int
}

// Matches reports whether the route r is matched by the entry.
func (r Range) Matches(route netip.Prefix) bool {
	return route.Addr().Is4() == r.Prefix.Addr().Is4() &&
		route.Bits() >= r.Ge && route.Bits() <= r.Le &&
		r.Prefix.Contains(route.Addr())
}

// Exact reports whether the entry matches only Prefix itself.
func (r Range) Exact() bool { return r.Ge == r.Prefix.Bits() && r.Le == r.Prefix.Bits() }

// OrLonger reports whether the entry matches Prefix and all more-specifics.
func (r Range) OrLonger() bool { return r.Ge == r.Prefix.Bits() && r.Le == maxBits(r.Prefix) }

func (r Range) String() string {
	switch {
	case r.Exact():
		return r.Prefix.String()
	case r.Ge == r.Prefix.Bits():
		return fmt.Sprintf("%s le %d", r.Prefix, r.Le)
	default:
		return fmt.Sprintf("%s ge %d le %d", r.Prefix, r.Ge, r.Le)
	}
}

func maxBits(p netip.Prefix) int { return p.Addr().BitLen() }

// sortPrefixes sorts in asn.ComparePrefix order (IPv4 first, then by
// address, then by length). Aggregating a full table is mostly this sort,
// so it sorts packed integer keys instead of calling a comparison
// function: IPv4 as addr<<8|bits in one uint64, IPv6 as two words.
func sortPrefixes(ps []netip.Prefix) {
	var k4 []uint64
	var k6 []key6
	for _, p := range ps {
		if p.Addr().Is4() {
			a := p.Addr().As4()
			k4 = append(k4, uint64(a[0])<<32|uint64(a[1])<<24|uint64(a[2])<<16|uint64(a[3])<<8|uint64(p.Bits()))
		} else {
			a := p.Addr().As16()
			k6 = append(k6, key6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())})
		}
	}
	slices.Sort(k4)
	slices.SortFunc(k6, func(a, b key6) int {
		return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo), cmp.Compare(a.bits, b.bits))
	})
	i := 0
	for _, k := range k4 {
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8)}), int(k&0xff))
		i++
	}
	for _, k := range k6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], k.hi)
		binary.BigEndian.PutUint64(a[8:], k.lo)
		ps[i] = netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
		i++
	}
}

type key6 struct {
	hi, lo uint64
	bits   uint8
}

// Coverage returns the smallest set of prefixes that covers exactly the same
// addresses as in (covered prefixes dropped, siblings merged). Used where
// addresses matter, not routes: ACLs, nftables, FlowSpec.
func Coverage(in []netip.Prefix) []netip.Prefix {
	k4 := make([]uint64, 0, len(in))
	var ps []netip.Prefix
	for _, p := range in {
		switch {
		case !p.IsValid():
		case p.Addr().Is4():
			k4 = append(k4, key4(p.Masked()))
		default:
			ps = append(ps, p.Masked())
		}
	}
	// IPv4 (the bulk of a table) on packed integers, IPv6 on netip values.
	es := stack4(sortKeys4(k4), false)
	out := make([]netip.Prefix, 0, len(es)+len(ps))
	for _, e := range es {
		out = append(out, e.prefix())
	}
	sortPrefixes(ps)
	// One pass with a stack: after sorting, a prefix either lies inside the
	// top of the stack, or starts after it. Merging a sibling pair can make
	// the parent mergeable with the new top, so we merge repeatedly.
	n4 := len(out)
	for _, p := range ps {
		if n := len(out); n > n4 {
			last := out[n-1]
			if last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
				continue
			}
		}
		out = append(out, p)
		for len(out) >= n4+2 {
			a, b := out[len(out)-2], out[len(out)-1]
			par, ok := siblingParent(a, b)
			if !ok {
				break
			}
			out = out[:len(out)-2]
			out = append(out, par)
		}
	}
	return out
}

// key4 packs an IPv4 prefix as addr<<8 | bits: integer order is
// asn.ComparePrefix order.
func key4(p netip.Prefix) uint64 {
	a := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits())
}

// sortKeys4 sorts 40-bit keys with a three-pass radix sort (16+16+8 bits);
// on a full table this is several times faster than a comparison sort.
func sortKeys4(keys []uint64) []uint64 {
	if len(keys) < 256 {
		slices.Sort(keys)
		return keys
	}
	tmp := make([]uint64, len(keys))
	src, dst := keys, tmp
	for _, pass := range []struct{ shift, width uint }{{0, 16}, {16, 16}, {32, 8}} {
		var count [1 << 16]int
		mask := uint64(1)<<pass.width - 1
		for _, k := range src {
			count[(k>>pass.shift)&mask]++
		}
		pos := 0
		for i := range count[:mask+1] {
			c := count[i]
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			d := (k >> pass.shift) & mask
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	return src
}

// ent4 is an IPv4 entry on the aggregation stack; ge is the shortest
// length it matches (0 for address coverage).
type ent4 struct {
	addr     uint32
	bits, ge uint8
}

func (e ent4) prefix() netip.Prefix {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], e.addr)
	return netip.PrefixFrom(netip.AddrFrom4(a), int(e.bits))
}

func mask4bits(bits uint8) uint32 { return ^uint32(0) << (32 - uint32(bits)) } // bits 0: 0 (Go shift rule)

// stack4 is the one-pass stack aggregation on sorted IPv4 keys: an entry
// inside the top entry (with a ge not below it) is dropped, and two
// sibling entries with the same ge become their parent. withGe false is
// address coverage (every ge is 0); true keeps each prefix's own length
// as its ge (route filters).
func stack4(keys []uint64, withGe bool) []ent4 {
	out := make([]ent4, 0, len(keys))
	for _, k := range keys {
		e := ent4{addr: uint32(k >> 8), bits: uint8(k)}
		if withGe {
			e.ge = e.bits
		}
		if n := len(out); n > 0 {
			q := out[n-1]
			if q.bits <= e.bits && e.addr&mask4bits(q.bits) == q.addr && q.ge <= e.ge {
				continue
			}
		}
		out = append(out, e)
		for len(out) >= 2 {
			a, b := out[len(out)-2], out[len(out)-1]
			if a.bits != b.bits || a.bits == 0 || a.ge != b.ge {
				break
			}
			half := uint32(1) << (32 - uint32(a.bits))
			if a.addr&half != 0 || b.addr != a.addr|half {
				break
			}
			out = append(out[:len(out)-2], ent4{addr: a.addr, bits: a.bits - 1, ge: a.ge})
		}
	}
	return out
}

// siblingParent returns the parent of a and b when they are the two halves
// of it.
func siblingParent(a, b netip.Prefix) (netip.Prefix, bool) {
	if a.Bits() != b.Bits() || a.Bits() == 0 || a.Addr().Is4() != b.Addr().Is4() || a == b {
		return netip.Prefix{}, false
	}
	par, err := a.Addr().Prefix(a.Bits() - 1)
	if err != nil || par.Addr() != a.Addr() || !par.Contains(b.Addr()) {
		return netip.Prefix{}, false
	}
	return par, true
}

// RouteFilterOptions says which more-specifics a route filter matches.
type RouteFilterOptions struct {
	// OrLonger matches more-specifics of each registered route, up to
	// MaxLength4 / MaxLength6 (0 means 32 / 128). Off: exact routes only.
	OrLonger               bool
	MaxLength4, MaxLength6 int
}

func (o RouteFilterOptions) le(p netip.Prefix) int {
	if !o.OrLonger {
		return p.Bits()
	}
	m := o.MaxLength6
	if p.Addr().Is4() {
		m = o.MaxLength4
	}
	if m <= 0 || m > maxBits(p) {
		m = maxBits(p)
	}
	return max(m, p.Bits())
}

// RouteFilter builds route-filter entries matching exactly the registered
// routes in and, with OrLonger, their more-specifics up to the maximum
// length. Entries are collapsed with ge/le ranges where that keeps the
// matched route set identical (as bgpq4 -A does): covered entries are
// dropped and sibling entries with equal ranges become their parent with
// "ge" above the parent's own length.
func RouteFilter(in []netip.Prefix, o RouteFilterOptions) []Range {
	// Entries with different "le" never cover or merge with each other for
	// the ranges built here (le is either one common maximum, or the
	// prefix's own length), so each group is collapsed on its own.
	type group struct {
		le   int
		k4   []uint64 // IPv4 as packed keys (see key4)
		rs6  []Range
		ipv6 bool
	}
	groups := map[int]*group{}
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		le := o.le(p)
		key := le
		if p.Addr().Is6() {
			key += 1000
		}
		g := groups[key]
		if g == nil {
			g = &group{le: le, ipv6: p.Addr().Is6()}
			if len(groups) == 0 && !g.ipv6 {
				g.k4 = make([]uint64, 0, len(in)) // usually the only group
			}
			groups[key] = g
		}
		if g.ipv6 {
			g.rs6 = append(g.rs6, Range{Prefix: p, Ge: p.Bits(), Le: le})
		} else {
			g.k4 = append(g.k4, key4(p))
		}
	}
	var out []Range
	for _, g := range groups {
		if g.ipv6 {
			out = append(out, collapse(g.rs6)...)
			continue
		}
		es := stack4(sortKeys4(g.k4), true)
		out = slices.Grow(out, len(es))
		for _, e := range es {
			out = append(out, Range{Prefix: e.prefix(), Ge: int(e.ge), Le: g.le})
		}
	}
	if len(groups) > 1 {
		SortRanges(out)
	}
	return out
}

// SortRanges orders entries by prefix, then ge.
func SortRanges(rs []Range) {
	slices.SortFunc(rs, func(a, b Range) int {
		if c := asn.ComparePrefix(a.Prefix, b.Prefix); c != 0 {
			return c
		}
		return a.Ge - b.Ge
	})
}

// collapse works on entries of one family with one common Le and Ge equal to
// their own length. After sorting, a container precedes what it contains and
// the kept entries are disjoint, so only the last kept entry can contain the
// next one, and siblings end up adjacent on the stack.
func collapse(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	le := rs[0].Le
	if rs[0].Prefix.Addr().Is4() {
		keys := make([]uint64, len(rs))
		for i, r := range rs {
			keys[i] = key4(r.Prefix)
		}
		ents := stack4(sortKeys4(keys), true)
		out := make([]Range, len(ents))
		for i, e := range ents {
			out[i] = Range{Prefix: e.prefix(), Ge: int(e.ge), Le: le}
		}
		return out
	}
	// Every entry has Ge equal to its length and the same Le, so ordering
	// by prefix is ordering by (prefix, ge).
	ps := make([]netip.Prefix, len(rs))
	for i, r := range rs {
		ps[i] = r.Prefix
	}
	sortPrefixes(ps)
	for i, p := range ps {
		rs[i] = Range{Prefix: p, Ge: p.Bits(), Le: le}
	}
	out := rs[:0:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			q := out[n-1]
			if q.Prefix.Bits() <= r.Prefix.Bits() && q.Prefix.Contains(r.Prefix.Addr()) && q.Ge <= r.Ge {
				continue
			}
		}
		out = append(out, r)
		for len(out) >= 2 {
			a, b := out[len(out)-2], out[len(out)-1]
			if a.Ge != b.Ge {
				break
			}
			par, ok := siblingParent(a.Prefix, b.Prefix)
			if !ok {
				break
			}
			out = append(out[:len(out)-2], Range{Prefix: par, Ge: a.Ge, Le: a.Le})
		}
	}
	return out
}

// Subtract returns the parts of p not covered by any of holes, as a minimal
// list of prefixes.
func Subtract(p netip.Prefix, holes []netip.Prefix) []netip.Prefix {
	var relevant []netip.Prefix
	for _, h := range holes {
		if h.Overlaps(p) {
			if h.Bits() <= p.Bits() {
				return nil // p is entirely inside a hole
			}
			relevant = append(relevant, h)
		}
	}
	if len(relevant) == 0 {
		return []netip.Prefix{p}
	}
	// Split p in halves until each half is either free of holes or inside one.
	var out []netip.Prefix
	var split func(q netip.Prefix)
	split = func(q netip.Prefix) {
		inside, touches := false, false
		for _, h := range relevant {
			if h.Overlaps(q) {
				touches = true
				if h.Bits() <= q.Bits() {
					inside = true
					break
				}
			}
		}
		switch {
		case inside:
			return
		case !touches:
			out = append(out, q)
			return
		}
		lo, hi := halves(q)
		split(lo)
		split(hi)
	}
	split(p)
	return out
}

// halves splits q into its two children.
func halves(q netip.Prefix) (netip.Prefix, netip.Prefix) {
	lo := netip.PrefixFrom(q.Addr(), q.Bits()+1)
	b := q.Addr().As16()
	bit := q.Bits()
	if q.Addr().Is4() {
		bit += 96
	}
	b[bit/8] |= 0x80 >> (bit % 8)
	var a netip.Addr
	if q.Addr().Is4() {
		a = netip.AddrFrom4([4]byte(b[12:16]))
	} else {
		a = netip.AddrFrom16(b)
	}
	return lo, netip.PrefixFrom(a, q.Bits()+1)
}
