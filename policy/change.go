package policy

import (
	"net/netip"
	"slices"

	"github.com/asfence/asfence/asn"
)

// TargetChange is what changed for one target between two Intents.
type TargetChange struct {
	Target string `json:"target"`
	// Before and After count the target's prefixes in the old and new Intent.
	Before int `json:"before"`
	After  int `json:"after"`
	// Added and Removed carry the evidence of the Intent they come from.
	Added       []asn.Prefix `json:"added"`
	Removed     []asn.Prefix `json:"removed"`
	AddedASNs   []uint32     `json:"added_asns"`
	RemovedASNs []uint32     `json:"removed_asns"`
}

// Empty reports whether nothing changed.
func (c TargetChange) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.AddedASNs) == 0 && len(c.RemovedASNs) == 0
}

// Change is the difference between two Intents, per target (targets present
// in either Intent, sorted by name).
type Change struct {
	Targets []TargetChange `json:"targets"`
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool {
	for _, t := range c.Targets {
		if !t.Empty() {
			return false
		}
	}
	return true
}

// Counts sums prefixes added and removed over all targets.
func (c Change) Counts() (added, removed int) {
	for _, t := range c.Targets {
		added += len(t.Added)
		removed += len(t.Removed)
	}
	return added, removed
}

// Compare returns what changed from old to new (either may be nil: empty).
func Compare(old, new *Intent) Change {
	names := map[string]bool{}
	for _, in := range []*Intent{old, new} {
		if in == nil {
			continue
		}
		for _, t := range in.Targets {
			names[t.Name] = true
		}
	}
	var ch Change
	for name := range names {
		var o, n *TargetIntent
		if old != nil {
			o = old.Target(name)
		}
		if new != nil {
			n = new.Target(name)
		}
		ch.Targets = append(ch.Targets, compareTarget(name, o, n))
	}
	slices.SortFunc(ch.Targets, func(a, b TargetChange) int {
		if a.Target < b.Target {
			return -1
		}
		if a.Target > b.Target {
			return 1
		}
		return 0
	})
	return ch
}

func compareTarget(name string, o, n *TargetIntent) TargetChange {
	tc := TargetChange{Target: name}
	oldP := map[netip.Prefix]asn.Prefix{}
	newP := map[netip.Prefix]asn.Prefix{}
	var oldA, newA []uint32
	if o != nil {
		for _, p := range o.Prefixes {
			oldP[p.Prefix] = p
		}
		oldA = o.ASNs
	}
	if n != nil {
		for _, p := range n.Prefixes {
			newP[p.Prefix] = p
		}
		newA = n.ASNs
	}
	tc.Before, tc.After = len(oldP), len(newP)
	for k, p := range newP {
		if _, ok := oldP[k]; !ok {
			tc.Added = append(tc.Added, p)
		}
	}
	for k, p := range oldP {
		if _, ok := newP[k]; !ok {
			tc.Removed = append(tc.Removed, p)
		}
	}
	byPrefix := func(a, b asn.Prefix) int { return asn.ComparePrefix(a.Prefix, b.Prefix) }
	slices.SortFunc(tc.Added, byPrefix)
	slices.SortFunc(tc.Removed, byPrefix)
	for _, a := range newA {
		if !slices.Contains(oldA, a) {
			tc.AddedASNs = append(tc.AddedASNs, a)
		}
	}
	for _, a := range oldA {
		if !slices.Contains(newA, a) {
			tc.RemovedASNs = append(tc.RemovedASNs, a)
		}
	}
	slices.Sort(tc.AddedASNs)
	slices.Sort(tc.RemovedASNs)
	return tc
}
