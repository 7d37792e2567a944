package watch

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// Only is the snapshot the policy judges a batch from: s's targets (names,
// IDs, ASNs) with the candidates as their only prefixes.
func Only(s *asn.Snapshot, cands []Candidate) *asn.Snapshot {
	out := &asn.Snapshot{GeneratedAt: s.GeneratedAt, Generator: s.Generator, Incomplete: []asn.Incomplete{}}
	for _, t := range s.Targets {
		nt := asn.TargetResult{Name: t.Name, Description: t.Description, ID: t.ID, ASNs: t.ASNs}
		for _, c := range cands {
			if c.Target == t.Name {
				nt.Prefixes = append(nt.Prefixes, asn.Prefix{Prefix: c.Prefix, Origins: slices.Clone(c.Origins), Evidence: slices.Clone(c.Evidence)})
			}
		}
		out.Targets = append(out.Targets, nt)
	}
	return out
}

// Merge returns s with the candidates added: a new prefix with its watch
// evidence, or the evidence added to a prefix s has. s is not modified.
func Merge(s *asn.Snapshot, cands []Candidate) *asn.Snapshot {
	out := *s
	out.Targets = slices.Clone(s.Targets)
	for i := range out.Targets {
		t := &out.Targets[i]
		var mine []Candidate
		for _, c := range cands {
			if c.Target == t.Name {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			continue
		}
		t.Prefixes = slices.Clone(t.Prefixes)
		at := map[netip.Prefix]int{}
		for j, p := range t.Prefixes {
			at[p.Prefix] = j
		}
		for _, c := range mine {
			if j, ok := at[c.Prefix]; ok {
				p := &t.Prefixes[j]
				p.Evidence = withEvidence(p.Evidence, c.Evidence, false)
				p.Origins = union(p.Origins, c.Origins)
				continue
			}
			at[c.Prefix] = len(t.Prefixes)
			t.Prefixes = append(t.Prefixes, asn.Prefix{Prefix: c.Prefix, Origins: slices.Clone(c.Origins), Evidence: slices.Clone(c.Evidence)})
		}
		slices.SortFunc(t.Prefixes, func(a, b asn.Prefix) int { return asn.ComparePrefix(a.Prefix, b.Prefix) })
	}
	return &out
}

// withEvidence returns ev plus add; replace drops ev's watch evidence
// first (a fresher view replaces it). ev is not modified.
func withEvidence(ev, add []asn.Evidence, replace bool) []asn.Evidence {
	out := make([]asn.Evidence, 0, len(ev)+len(add))
	for _, e := range ev {
		if replace && IsWatchSource(e.Source) {
			continue
		}
		out = append(out, e)
	}
	for _, e := range add {
		if !slices.ContainsFunc(out, func(x asn.Evidence) bool { return x.Source == e.Source && x.Detail == e.Detail }) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b asn.Evidence) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Detail, b.Detail), a.Seen.Compare(b.Seen))
	})
	return out
}

func union(a, b []uint32) []uint32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// AddTo returns in with add's prefixes (and their targets' ASNs kept as
// in's) added where in lacks them: a delta that only adds. in is not
// modified.
func AddTo(in, add *policy.Intent) (*policy.Intent, []Key) {
	out := *in
	out.Targets = slices.Clone(in.Targets)
	var added []Key
	for _, at := range add.Targets {
		i := slices.IndexFunc(out.Targets, func(t policy.TargetIntent) bool { return t.Name == at.Name })
		if i < 0 || len(at.Prefixes) == 0 {
			continue
		}
		t := &out.Targets[i]
		have := map[netip.Prefix]bool{}
		for _, p := range t.Prefixes {
			have[p.Prefix] = true
		}
		ps := slices.Clone(t.Prefixes)
		for _, p := range at.Prefixes {
			if !have[p.Prefix] {
				have[p.Prefix] = true
				ps = append(ps, p)
				added = append(added, Key{t.Name, p.Prefix})
			}
		}
		slices.SortFunc(ps, func(a, b asn.Prefix) int { return asn.ComparePrefix(a.Prefix, b.Prefix) })
		t.Prefixes = ps
	}
	return &out, added
}

// Carry keeps the watch's prefixes across a resolve (cur, modified in
// place) from the snapshot in force (prev): a prefix prev has with watch
// evidence stays, with that evidence, until a scheduled run. At a
// scheduled run (scheduled true) only what routing shows now (live: the
// watch's current view) stays, with fresh evidence; a prefix that left
// routing is then kept only if the resolve found it. It returns the number
// of prefixes cur did not have.
func Carry(prev, cur *asn.Snapshot, live []Candidate, scheduled bool) int {
	if prev == nil {
		return 0
	}
	now := map[Key][]asn.Evidence{}
	for _, c := range live {
		now[Key{c.Target, c.Prefix}] = c.Evidence
	}
	n := 0
	for ti := range cur.Targets {
		t := &cur.Targets[ti]
		old := prev.Target(t.Name)
		if old == nil {
			continue
		}
		at := map[netip.Prefix]int{}
		for j, p := range t.Prefixes {
			at[p.Prefix] = j
		}
		asns := map[uint32]bool{}
		for _, a := range t.ASNs {
			asns[a.ASN] = true
		}
		for _, p := range old.Prefixes {
			var oldEv []asn.Evidence
			for _, e := range p.Evidence {
				if IsWatchSource(e.Source) {
					oldEv = append(oldEv, e)
				}
			}
			if len(oldEv) == 0 {
				continue
			}
			ev, seen := now[Key{t.Name, p.Prefix}]
			if !seen {
				if scheduled {
					continue // left routing: the resolve decides
				}
				ev = oldEv
			}
			if j, ok := at[p.Prefix]; ok {
				t.Prefixes[j].Evidence = withEvidence(t.Prefixes[j].Evidence, ev, true)
				continue
			}
			var origins []uint32
			for _, o := range p.Origins {
				if asns[o] {
					origins = append(origins, o)
				}
			}
			if len(origins) == 0 {
				continue // its origin is no longer the target's
			}
			at[p.Prefix] = len(t.Prefixes)
			t.Prefixes = append(t.Prefixes, asn.Prefix{Prefix: p.Prefix, Origins: origins, Evidence: slices.Clone(ev)})
			n++
		}
	}
	if n > 0 {
		cur.Normalize()
	}
	return n
}
