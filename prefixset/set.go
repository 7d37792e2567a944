package prefixset

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// Set is a fixed set of prefixes for overlap checks (the protect list,
// the bogons), held in a routing table (bart): a check walks down the
// trie instead of over the whole list, so checking a million prefixes
// against thousands of protected ones stays cheap. A Set is safe for
// concurrent use.
type Set struct {
	list  []netip.Prefix
	table bart.Table[int] // position in list
}

// NewSet makes a Set of ps.
func NewSet(ps []netip.Prefix) *Set {
	s := &Set{list: slices.Clone(ps)}
	// Backwards, so that of equal prefixes the first one given stays.
	for i := len(s.list) - 1; i >= 0; i-- {
		s.table.Insert(s.list[i], i)
	}
	return s
}

// Overlap returns a prefix of the set that overlaps p (contains it, equals
// it, or lies inside it): of several, the first in the order given to
// NewSet.
func (s *Set) Overlap(p netip.Prefix) (netip.Prefix, bool) {
	if s == nil || !s.table.OverlapsPrefix(p) {
		return netip.Prefix{}, false
	}
	first := len(s.list)
	for _, i := range s.table.Supernets(p) {
		first = min(first, i)
	}
	for _, i := range s.table.Subnets(p) {
		first = min(first, i)
	}
	return s.list[first], true
}
