// Package filters turns a Snapshot into an Intent (policy, guards,
// aggregation) and renders the Intent as vendor router configuration.
package filters

import (
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

func sortPrefixes(ps []netip.Prefix) { slices.SortFunc(ps, asn.ComparePrefix) }

// Coverage returns the smallest set of prefixes that covers exactly the same
// addresses as in (covered prefixes dropped, siblings merged). Used where
// addresses matter, not routes: ACLs, nftables, FlowSpec.
func Coverage(in []netip.Prefix) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if p.IsValid() {
			ps = append(ps, p.Masked())
		}
	}
	sortPrefixes(ps)
	// One pass with a stack: after sorting, a prefix either lies inside the
	// top of the stack, or starts after it. Merging a sibling pair can make
	// the parent mergeable with the new top, so we merge repeatedly.
	out := ps[:0:0]
	for _, p := range ps {
		if n := len(out); n > 0 {
			last := out[n-1]
			if last.Addr().Is4() == p.Addr().Is4() && last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
				continue
			}
		}
		out = append(out, p)
		for len(out) >= 2 {
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
	groups := map[int][]Range{}
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
		groups[key] = append(groups[key], Range{Prefix: p, Ge: p.Bits(), Le: le})
	}
	var out []Range
	for _, g := range groups {
		out = append(out, collapse(g)...)
	}
	SortRanges(out)
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
	SortRanges(rs)
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

// Overlaps reports whether p overlaps any prefix in set (either contains the
// other).
func Overlaps(p netip.Prefix, set []netip.Prefix) (netip.Prefix, bool) {
	for _, q := range set {
		if p.Overlaps(q) {
			return q, true
		}
	}
	return netip.Prefix{}, false
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
