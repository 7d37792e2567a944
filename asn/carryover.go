package asn

import (
	"net/netip"
	"slices"
	"strings"
)

// Carried counts what CarryOver kept from the previous snapshot.
type Carried struct {
	ASNs     int `json:"asns"`
	Prefixes int `json:"prefixes"`
}

// CarryOver is the last-known-good rule for a partly failed resolve: cur
// lacks the facts of the sources it lists as Incomplete, so anything in prev
// that rested on one of those sources is kept (with its old evidence) rather
// than withdrawn. An ASN of prev is kept when one of its evidence sources
// failed; a prefix of prev is kept when one of its evidence sources failed,
// or when one of its origins is a kept ASN (no source could be asked about
// an ASN that discovery lost). Facts present in cur get back the evidence
// of failed sources that prev had. Targets only in prev are dropped (they
// are no longer configured); prev and cur are not modified. A nil prev or a
// cur without failures returns a copy of cur.
func CarryOver(prev, cur *Snapshot) (*Snapshot, Carried) {
	out := cloneSnapshot(cur)
	var c Carried
	if prev == nil || len(cur.Incomplete) == 0 {
		return out, c
	}
	for ti := range out.Targets {
		t := &out.Targets[ti]
		old := prev.Target(t.Name)
		if old == nil {
			continue
		}
		failed := func(ev []Evidence) []Evidence {
			var keep []Evidence
			for _, e := range ev {
				if sourceFailed(cur, e.Source, t.Name) {
					keep = append(keep, e)
				}
			}
			return keep
		}
		asns := map[uint32]int{}
		for i, a := range t.ASNs {
			asns[a.ASN] = i
		}
		kept := map[uint32]bool{}
		for _, a := range old.ASNs {
			ev := failed(a.Evidence)
			if len(ev) == 0 {
				continue
			}
			if i, ok := asns[a.ASN]; ok {
				t.ASNs[i].Evidence = mergeEvidence(t.ASNs[i].Evidence, ev)
				continue
			}
			na := a
			na.Evidence = slices.Clone(a.Evidence)
			t.ASNs = append(t.ASNs, na)
			asns[a.ASN] = len(t.ASNs) - 1
			kept[a.ASN] = true
			c.ASNs++
		}
		pfx := map[netip.Prefix]int{}
		for i, p := range t.Prefixes {
			pfx[p.Prefix] = i
		}
		for _, p := range old.Prefixes {
			ev := failed(p.Evidence)
			if i, ok := pfx[p.Prefix]; ok {
				if len(ev) > 0 {
					t.Prefixes[i].Evidence = mergeEvidence(t.Prefixes[i].Evidence, ev)
					t.Prefixes[i].Origins = mergeOrigins(t.Prefixes[i].Origins, p.Origins, asns)
					t.Prefixes[i].Upstreams = mergeUpstreams(t.Prefixes[i].Upstreams, p.Upstreams, asns)
				}
				continue
			}
			orphan := slices.ContainsFunc(p.Origins, func(o uint32) bool { return kept[o] })
			if len(ev) == 0 && !orphan {
				continue // every source that claimed it answered, and none does now
			}
			np := p
			np.Origins = slices.Clone(p.Origins)
			np.Upstreams = slices.Clone(p.Upstreams)
			np.Evidence = slices.Clone(p.Evidence)
			t.Prefixes = append(t.Prefixes, np)
			pfx[p.Prefix] = len(t.Prefixes) - 1
			c.Prefixes++
		}
	}
	out.Normalize()
	return out, c
}

// sourceFailed matches an evidence source against the failed sources of
// cur. Clients name their failures by address ("irr:127.0.0.1:4343") while
// their facts may carry a database name ("irr:RADB"), so a failure also
// covers every evidence source of the same kind (the part before the first
// colon). Keeping too much for one run is safe; withdrawing a prefix whose
// source was down is not.
func sourceFailed(cur *Snapshot, source, target string) bool {
	kind := sourceKind(source)
	for _, in := range cur.Incomplete {
		if in.Target != "" && in.Target != target {
			continue
		}
		if in.Source == source || sourceKind(in.Source) == kind {
			return true
		}
	}
	return false
}

func sourceKind(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func mergeEvidence(a, b []Evidence) []Evidence {
	out := slices.Clone(a)
	for _, e := range b {
		if !slices.ContainsFunc(out, func(x Evidence) bool { return x.Source == e.Source && x.Detail == e.Detail }) {
			out = append(out, e)
		}
	}
	return out
}

// mergeOrigins adds old origins that are still attributed ASNs.
func mergeOrigins(cur, old []uint32, asns map[uint32]int) []uint32 {
	out := slices.Clone(cur)
	for _, o := range old {
		if _, ok := asns[o]; ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// mergeUpstreams adds old upstreams that are not (now) the target's ASNs.
func mergeUpstreams(cur, old []uint32, asns map[uint32]int) []uint32 {
	out := slices.Clone(cur)
	for _, o := range old {
		if _, ok := asns[o]; !ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// cloneSnapshot deep-copies the parts CarryOver modifies.
func cloneSnapshot(s *Snapshot) *Snapshot {
	out := *s
	out.Incomplete = slices.Clone(s.Incomplete)
	out.Provenance = slices.Clone(s.Provenance)
	out.Targets = make([]TargetResult, len(s.Targets))
	for i, t := range s.Targets {
		nt := t
		nt.ASNs = make([]ASN, len(t.ASNs))
		for j, a := range t.ASNs {
			na := a
			na.Evidence = slices.Clone(a.Evidence)
			nt.ASNs[j] = na
		}
		nt.Prefixes = make([]Prefix, len(t.Prefixes))
		for j, p := range t.Prefixes {
			np := p
			np.Origins = slices.Clone(p.Origins)
			np.Upstreams = slices.Clone(p.Upstreams)
			np.Evidence = slices.Clone(p.Evidence)
			nt.Prefixes[j] = np
		}
		out.Targets[i] = nt
	}
	return &out
}
