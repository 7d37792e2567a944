package prefixset

import (
	"math"
	"net/netip"

	"github.com/gaissmai/bart"
)

// Size counts the address space of ps, overlaps once: IPv4 addresses, and
// IPv6 /48s (the usual unit of IPv6 space: a prefix longer than /48 counts
// as the /48 it lies in). Counts past math.MaxUint64 stay there.
func Size(ps []netip.Prefix) (v4 uint64, v6 uint64) {
	in := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() && p.Addr().Is6() && p.Bits() > 48 {
			p = netip.PrefixFrom(p.Addr(), 48).Masked()
		}
		in = append(in, p)
	}
	for _, p := range Coverage(in) {
		if p.Addr().Is4() {
			v4 = addSat(v4, 32-p.Bits())
		} else {
			v6 = addSat(v6, 48-p.Bits())
		}
	}
	return v4, v6
}

// addSat adds 2^exp to n, saturating.
func addSat(n uint64, exp int) uint64 {
	if exp >= 64 {
		return math.MaxUint64
	}
	d := uint64(1) << exp
	if n > math.MaxUint64-d {
		return math.MaxUint64
	}
	return n + d
}

// Intersect returns the addresses in both a and b, as their minimal cover.
// b is held in a routing table (bart), so each prefix of a is looked up
// rather than compared with all of b.
func Intersect(a, b []netip.Prefix) []netip.Prefix {
	var t bart.Table[struct{}]
	for _, p := range Coverage(b) {
		t.Insert(p, struct{}{})
	}
	var out []netip.Prefix
	for _, p := range Coverage(a) {
		if !t.OverlapsPrefix(p) {
			continue
		}
		// The cover of b has no nested prefixes: either one of them holds
		// p, or the ones inside p are the intersection.
		if _, _, ok := t.LookupPrefixLPM(p); ok {
			out = append(out, p)
			continue
		}
		for q := range t.Subnets(p) {
			out = append(out, q)
		}
	}
	return Coverage(out)
}
