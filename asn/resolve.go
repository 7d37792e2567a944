package asn

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Source is a registry or input. Name identifies it in Incomplete entries
// (e.g. "irr:whois.radb.net:43", "ripestat").
type Source interface {
	Name() string
}

// Discoverer finds more ASNs for a target (AS-SET members, organisation
// networks, resources sharing a holder's opaque-id).
type Discoverer interface {
	Source
	Discover(ctx context.Context, t *Target) ([]ASNFact, error)
}

// Follower is a Discoverer whose answer also depends on the ASNs other
// sources found (the organisation on a discovered ASN's aut-num, the
// opaque-id of a discovered ASN): the engine asks it again with every ASN
// known so far until no source finds a new one (the discovery closure), at
// most MaxDiscoveryRounds times.
type Follower interface {
	Discoverer
	Follow(ctx context.Context, t *Target, known []uint32) ([]ASNFact, error)
}

// MaxDiscoveryRounds bounds the discovery closure: the first round asks
// every Discoverer, each further round asks the Followers with the ASNs
// found so far. A closure still growing after the last round is recorded
// as incomplete (source "discovery").
const MaxDiscoveryRounds = 5

// QueryTimeouter is a source whose queries need longer than the engine's
// timeout (bulk downloads and scans of whole dumps); the engine uses the
// longer of the two for it.
type QueryTimeouter interface {
	QueryTimeout() time.Duration
}

// Resolver gives facts about a target whose ASNs are known: prefixes
// originated by or registered to those ASNs, and holder names.
//
// Discover and Resolve may return facts together with an error when only
// part of the query failed; they must never return facts they did not get.
type Resolver interface {
	Source
	Resolve(ctx context.Context, t *Target, asns []uint32) (Facts, error)
}

// RouteLookup is a source holding routing tables: it tells which origins
// announce routes equal to or more specific than p. Like Resolve, it may
// return routes together with an error when it could read only part of
// its tables.
type RouteLookup interface {
	Source
	Routes(ctx context.Context, p netip.Prefix) ([]RouteFact, error)
}

// RouteFact is a route seen in a routing table: its prefix, origin ASN and
// the evidence (which table, how widely and when it was seen).
type RouteFact struct {
	Prefix   netip.Prefix
	Origin   uint32
	Evidence Evidence
}

// Provenancer is a source that can describe the inputs it read (files with
// their checksums), for the snapshot's provenance.
type Provenancer interface {
	Provenance() []Input
}

// ASNFact is a claim that an ASN belongs to a target.
type ASNFact struct {
	ASN      uint32
	Name     string
	Evidence Evidence
	// NameOnly marks a claim resting on a holder or organisation name
	// alone: it attributes a new ASN only when the target opts in
	// (IncludeNameOnly), and then marks it name-only.
	NameOnly bool
}

// PrefixFact is a claim that a prefix belongs to a target. Origin 0 means
// the source gave no origin ASN.
type PrefixFact struct {
	Prefix   netip.Prefix
	Origin   uint32
	Evidence Evidence
	// Upstream marks Origin as an AS that is not the target's but was seen
	// originating the prefix or routes inside it (the target's registered
	// space announced by its upstream). It is recorded in Prefix.Upstreams
	// and never attributed to the target.
	Upstream bool
}

// Facts is what a Resolver returns for one target.
type Facts struct {
	ASNs     []ASNFact
	Prefixes []PrefixFact
}

// Engine runs sources for targets and merges their answers.
type Engine struct {
	Sources []Source
	// Timeout bounds each source call (per target); 0 means 60 s.
	Timeout time.Duration
	// Now stamps built-in evidence and the snapshot; nil means time.Now.
	Now func() time.Time
	// Generator is recorded in the snapshot (e.g. "asfence v0.1.0").
	Generator string
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Run resolves every target. A failing source is recorded in Incomplete and
// the others' results are still returned. Run returns an error only when
// every source failed for every target, or ctx ended.
func (e *Engine) Run(ctx context.Context, targets []Target) (*Snapshot, error) {
	now := e.now().UTC().Truncate(time.Second)
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	snap := &Snapshot{GeneratedAt: now, Generator: e.Generator}
	var mu sync.Mutex
	calls, failures := 0, 0
	// stage asks every source in parallel, each call with its own timeout.
	// query returns whether it asked the source at all, and a merge of what
	// it got: a source that failed part-way may return what it did get; that
	// is merged and the source is still listed as incomplete.
	stage := func(t *Target, query func(ctx context.Context, s Source) (asked bool, merge func(), err error)) error {
		var wg sync.WaitGroup
		for _, s := range e.Sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := timeout
				if q, ok := s.(QueryTimeouter); ok && q.QueryTimeout() > d {
					d = q.QueryTimeout()
				}
				cctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				asked, merge, err := query(cctx, s)
				if !asked {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				calls++
				if err != nil {
					failures++
					snap.Incomplete = append(snap.Incomplete, Incomplete{Source: s.Name(), Target: t.Name, Error: err.Error()})
				}
				merge()
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("resolve: %w", err)
		}
		return nil
	}
	for ti := range targets {
		t := &targets[ti]
		m := newMerger(t)
		for _, s := range t.ActiveASNs() {
			m.addASN(ASNFact{ASN: s.ASN, Name: s.Name, Evidence: Evidence{Source: "builtin", Detail: s.Why, Seen: now}})
		}
		// Stage 1: discovery of more ASNs, to a fixed point: what one
		// source found may lead another (or the same) to more.
		for round := 1; ; round++ {
			before := len(m.asns)
			known := m.asnList()
			if err := stage(t, func(ctx context.Context, s Source) (bool, func(), error) {
				var facts []ASNFact
				var err error
				if f, ok := s.(Follower); ok && round > 1 {
					facts, err = f.Follow(ctx, t, slices.Clone(known))
				} else if d, ok := s.(Discoverer); ok && round == 1 {
					facts, err = d.Discover(ctx, t)
				} else {
					return false, nil, nil
				}
				return true, func() {
					for _, f := range facts {
						m.addASN(f)
					}
				}, err
			}); err != nil {
				return nil, err
			}
			if len(m.asns) == before {
				break
			}
			if round == MaxDiscoveryRounds {
				snap.Incomplete = append(snap.Incomplete, Incomplete{Source: "discovery", Target: t.Name,
					Error: fmt.Sprintf("still finding new ASNs after %d rounds (%d known); stopped", round, len(m.asns))})
				break
			}
		}
		// Stage 2: prefixes and names for the known ASNs.
		asns := m.asnList()
		if err := stage(t, func(ctx context.Context, s Source) (bool, func(), error) {
			r, ok := s.(Resolver)
			if !ok {
				return false, nil, nil
			}
			facts, err := r.Resolve(ctx, t, slices.Clone(asns))
			return true, func() {
				for _, f := range facts.ASNs {
					m.annotateASN(f)
				}
				m.addPrefixes(facts.Prefixes)
			}, err
		}); err != nil {
			return nil, err
		}
		// Stage 3: what routing tables say about prefixes that came
		// without an origin (registrations, range lists): non-target
		// origins of routes inside them are recorded as upstreams.
		if bare := m.originless(); len(bare) > 0 {
			if err := stage(t, func(ctx context.Context, s Source) (bool, func(), error) {
				rl, ok := s.(RouteLookup)
				if !ok {
					return false, nil, nil
				}
				var facts []PrefixFact
				var err error
				for _, p := range bare {
					routes, rerr := rl.Routes(ctx, p)
					facts = append(facts, m.upstreamFacts(p, routes)...)
					if rerr != nil {
						err = rerr
						break
					}
				}
				return true, func() {
					for _, f := range facts {
						m.addPrefix(f)
					}
				}, err
			}); err != nil {
				return nil, err
			}
		}
		snap.Targets = append(snap.Targets, m.result())
	}
	// After the queries: sources that fetch lazily know their inputs only now.
	for _, s := range e.Sources {
		if p, ok := s.(Provenancer); ok {
			snap.Provenance = append(snap.Provenance, p.Provenance()...)
		}
	}
	snap.Normalize()
	if calls > 0 && failures == calls {
		return snap, fmt.Errorf("resolve: all %d source queries failed (first: %s: %s)", calls, snap.Incomplete[0].Source, snap.Incomplete[0].Error)
	}
	return snap, nil
}

// dropReason says why Select left out a stored prefix, when the snapshot
// itself is the reason: no evidence, or origins that are none of the
// target's ASNs in the snapshot. What the target's definition leaves out
// (exclude_prefixes, exclude_asns, name-only ASNs not opted in) is not
// reported: it is the operator's choice.
func (m *merger) dropReason(p Prefix, inSnapshot map[uint32]bool) (SnapshotDrop, bool) {
	d := SnapshotDrop{Target: m.t.Name, Prefix: p.Prefix}
	switch {
	case m.t.ExcludedPrefix(p.Prefix.Masked()):
		return d, false
	case len(p.Evidence) == 0:
		d.Reason, d.Detail = DropNoEvidence, "the snapshot gives no source for it"
		return d, true
	}
	var foreign []string
	for _, o := range p.Origins {
		if !inSnapshot[o] && !m.t.Excluded(o) && !m.t.IsNameOnly(o) {
			foreign = append(foreign, fmt.Sprintf("AS%d", o))
		}
	}
	if len(foreign) == 0 {
		return d, false
	}
	d.Reason = DropOriginNotTarget
	d.Detail = fmt.Sprintf("origin %s is not one of the target's ASNs in the snapshot", strings.Join(foreign, ", "))
	return d, true
}

// merger accumulates facts for one target.
type merger struct {
	t    *Target
	asns map[uint32]*ASN
	// Prefix facts are only appended here and grouped once at the end by
	// sorting: for 100k-prefix sets this is several times cheaper than a map
	// keyed by netip.Prefix (whose keys hold pointers the GC must scan).
	facts []PrefixFact
}

func newMerger(t *Target) *merger {
	return &merger{t: t, asns: map[uint32]*ASN{}}
}

func (m *merger) addASN(f ASNFact) {
	if f.ASN == 0 || m.t.Excluded(f.ASN) {
		return
	}
	if m.t.IsNameOnly(f.ASN) && !m.t.IncludeNameOnly {
		return
	}
	nameOnly := m.t.IsNameOnly(f.ASN) || f.NameOnly
	a := m.asns[f.ASN]
	if a == nil {
		if f.NameOnly && !m.t.IncludeNameOnly {
			return
		}
		a = &ASN{ASN: f.ASN, NameOnly: nameOnly}
		m.asns[f.ASN] = a
	}
	// Any claim that does not rest on a name alone makes it a full member.
	a.NameOnly = a.NameOnly && nameOnly
	if a.Name == "" {
		a.Name = f.Name
	}
	a.Evidence = append(a.Evidence, f.Evidence)
}

// annotateASN adds evidence (e.g. an RDAP holder name) to an ASN already
// attributed; it never attributes a new one.
func (m *merger) annotateASN(f ASNFact) {
	if a := m.asns[f.ASN]; a != nil {
		if f.Name != "" && (a.Name == "" || f.Evidence.Source == "rdap") {
			a.Name = f.Name
		}
		a.Evidence = append(a.Evidence, f.Evidence)
	}
}

func (m *merger) addPrefix(f PrefixFact) {
	if !f.Prefix.IsValid() {
		return
	}
	f.Prefix = f.Prefix.Masked()
	if len(m.t.ExcludePrefixes) > 0 && m.t.ExcludedPrefix(f.Prefix) {
		return
	}
	if f.Upstream {
		if f.Origin == 0 {
			return
		}
		if m.asns[f.Origin] != nil {
			f.Upstream = false // the target's own ASN: an origin like any other
		}
	} else if f.Origin != 0 && m.asns[f.Origin] == nil {
		// A prefix whose origin is not (or no longer) one of the target's
		// ASNs is not the target's, whatever a per-ASN file says.
		return
	}
	m.facts = append(m.facts, f)
}

// addPrefixes adds facts as addPrefix does. When the merger holds no
// facts yet and addPrefix would keep every one unchanged (the usual case:
// one big answer), it keeps fs itself instead of a copy (a million facts
// are 100 MB); fs is only read, and capped so that a later append copies.
func (m *merger) addPrefixes(fs []PrefixFact) {
	if len(m.facts) == 0 && m.keepsAll(fs) {
		m.facts = fs[:len(fs):len(fs)]
		return
	}
	m.facts = slices.Grow(m.facts, len(fs))
	for _, f := range fs {
		m.addPrefix(f)
	}
}

// keepsAll reports whether addPrefix would keep every fact as it is.
func (m *merger) keepsAll(fs []PrefixFact) bool {
	if len(m.t.ExcludePrefixes) > 0 {
		return false
	}
	var last uint32
	for i := range fs {
		f := &fs[i]
		if f.Upstream || !f.Prefix.IsValid() || f.Prefix.Masked() != f.Prefix {
			return false
		}
		if f.Origin != 0 && f.Origin != last {
			if m.asns[f.Origin] == nil {
				return false
			}
			last = f.Origin
		}
	}
	return true
}

// asTrans is AS_TRANS (RFC 6793): a placeholder, never a real origin.
const asTrans = 23456

// originless returns the prefixes some source gave without an origin
// (registrations, cloud-range lists), sorted and without duplicates.
func (m *merger) originless() []netip.Prefix {
	var out []netip.Prefix
	for _, f := range m.facts {
		if f.Origin == 0 {
			out = append(out, f.Prefix)
		}
	}
	slices.SortFunc(out, ComparePrefix)
	return slices.Compact(out)
}

// upstreamFacts turns the routes a RouteLookup found inside p into facts
// about p: each origin that is not one of the target's ASNs becomes an
// upstream of p, with one evidence entry per origin and table (the first
// route and how many more). Routes by the target's own ASNs are skipped:
// they are prefixes of the target in their own right.
func (m *merger) upstreamFacts(p netip.Prefix, routes []RouteFact) []PrefixFact {
	type key struct {
		origin uint32
		source string
	}
	var order []key
	first := map[key]RouteFact{}
	more := map[key]int{}
	for _, r := range routes {
		if r.Origin == 0 || r.Origin == asTrans || m.asns[r.Origin] != nil {
			continue // no origin, AS_TRANS (not a real AS), or the target's own
		}
		k := key{r.Origin, r.Evidence.Source}
		if _, ok := first[k]; !ok {
			first[k] = r
			order = append(order, k)
			continue
		}
		more[k]++
		if r.Evidence.Seen.After(first[k].Evidence.Seen) {
			f := first[k]
			f.Evidence.Seen = r.Evidence.Seen
			first[k] = f
		}
	}
	out := make([]PrefixFact, 0, len(order))
	for _, k := range order {
		r := first[k]
		where := "route " + r.Prefix.String() + " inside it"
		if r.Prefix == p.Masked() {
			where = "the route itself"
		}
		detail := fmt.Sprintf("originated by AS%d"+upstreamDetail+"%s", k.origin, where)
		if r.Evidence.Detail != "" {
			detail += ", " + r.Evidence.Detail
		}
		if n := more[k]; n > 0 {
			detail += fmt.Sprintf("; and %d more route(s) inside it by AS%d", n, k.origin)
		}
		out = append(out, PrefixFact{Prefix: p, Origin: k.origin, Upstream: true,
			Evidence: Evidence{Source: r.Evidence.Source, Detail: detail, Seen: r.Evidence.Seen}})
	}
	return out
}

func (m *merger) asnList() []uint32 {
	out := make([]uint32, 0, len(m.asns))
	for a := range m.asns {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// prefixKey orders prefixes like ComparePrefix (IPv4 first, then address,
// then length) with plain integer compares.
type prefixKey struct {
	hi, lo uint64
	meta   uint16 // family (bit 8) and length
	i      int32
}

func keyOf(p netip.Prefix, i int) prefixKey {
	a := p.Addr().As16()
	k := prefixKey{hi: binary.BigEndian.Uint64(a[:8]), lo: binary.BigEndian.Uint64(a[8:]), meta: uint16(p.Bits()), i: int32(i)}
	if p.Addr().Is6() {
		k.meta |= 1 << 8
	}
	return k
}

func compareKeys(a, b prefixKey) int {
	if a.meta>>8 != b.meta>>8 {
		return int(a.meta>>8) - int(b.meta>>8)
	}
	if a.hi != b.hi {
		return cmp.Compare(a.hi, b.hi)
	}
	if a.lo != b.lo {
		return cmp.Compare(a.lo, b.lo)
	}
	if a.meta != b.meta {
		return int(a.meta) - int(b.meta)
	}
	return int(a.i) - int(b.i) // stable: facts keep their order of arrival
}

// sortedKeys returns the facts' keys in prefix order (stable), or nil
// when the facts are in that order already (one registry answer usually
// is: no 24 bytes per fact and no sort).
func (m *merger) sortedKeys() []prefixKey {
	sorted := true
	for i := 1; i < len(m.facts) && sorted; i++ {
		sorted = ComparePrefix(m.facts[i-1].Prefix, m.facts[i].Prefix) <= 0
	}
	if sorted {
		return nil
	}
	keys := make([]prefixKey, len(m.facts))
	for i, f := range m.facts {
		keys[i] = keyOf(f.Prefix, i)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

func (m *merger) result() TargetResult {
	r := TargetResult{Name: m.t.Name, Description: m.t.Description, ID: m.t.ID}
	for _, a := range m.asns {
		r.ASNs = append(r.ASNs, *a)
	}
	keys := m.sortedKeys()
	at := func(j int) *PrefixFact { return &m.facts[j] }
	if keys != nil {
		at = func(j int) *PrefixFact { return &m.facts[keys[j].i] }
	}
	// Facts of one prefix are now adjacent: every entry's origins and
	// evidence are sub-slices of two shared arrays (two allocations rather
	// than two per prefix). A prefix with one origin and one evidence
	// entry equal to the previous prefix's shares them (one registry
	// answer gives thousands of prefixes the same origin and evidence:
	// 56 bytes of evidence per prefix otherwise). Shared runs have one
	// element, so sorting and compacting them in place (Normalize) keeps
	// them as they are.
	origins := make([]uint32, 0, min(len(m.facts), 1024))
	var upstreams []uint32
	evidence := make([]Evidence, 0, min(len(m.facts), 1024))
	var prevO []uint32
	var prevE []Evidence
	r.Prefixes = make([]Prefix, 0, len(m.facts))
	for j := 0; j < len(m.facts); {
		p := Prefix{Prefix: at(j).Prefix}
		o0, u0, e0 := len(origins), len(upstreams), len(evidence)
		for ; j < len(m.facts) && at(j).Prefix == p.Prefix; j++ {
			f := at(j)
			switch {
			case f.Upstream:
				upstreams = append(upstreams, f.Origin)
			case f.Origin != 0:
				origins = append(origins, f.Origin)
			}
			evidence = append(evidence, f.Evidence)
		}
		if len(evidence)-e0 == len(upstreams)-u0 {
			// Only upstream facts: no source attributed the prefix itself.
			upstreams, evidence = upstreams[:u0], evidence[:e0]
			continue
		}
		if len(origins)-o0 == 1 && o0 > 0 && len(prevO) == 1 && prevO[0] == origins[o0] {
			origins = origins[:o0]
			p.Origins = prevO
		} else {
			p.Origins = origins[o0:len(origins):len(origins)]
		}
		if len(upstreams) > u0 {
			p.Upstreams = upstreams[u0:len(upstreams):len(upstreams)]
		}
		if len(evidence)-e0 == 1 && e0 > 0 && len(prevE) == 1 && prevE[0] == evidence[e0] {
			evidence = evidence[:e0]
			p.Evidence = prevE
		} else {
			p.Evidence = evidence[e0:len(evidence):len(evidence)]
		}
		prevO, prevE = p.Origins, p.Evidence
		r.Prefixes = append(r.Prefixes, p)
	}
	return r
}

// selectPrefixes keeps the prefixes of a normalized snapshot target that the
// merger's ASNs still attribute, as feeding every (origin, evidence) pair
// to addPrefix and taking the result would (the same rules, one prefix at a
// time): an excluded prefix goes; an origin no longer attributed is dropped,
// and the prefix with it when no origin is left (a prefix without origins
// stays); an upstream that became a target ASN counts as an origin; a
// prefix without evidence never was a fact. Unchanged prefixes are shared,
// and so is in itself when nothing changes. What the snapshot itself does
// not support is reported (see dropReason).
func (m *merger) selectPrefixes(in []Prefix, inSnapshot map[uint32]bool) ([]Prefix, []SnapshotDrop) {
	var dropped []SnapshotDrop
	report := func(p Prefix) {
		if d, ok := m.dropReason(p, inSnapshot); ok {
			dropped = append(dropped, d)
		}
	}
	var out []Prefix // nil while every prefix so far is kept unchanged
	copied := func(i int) {
		if out == nil {
			out = make([]Prefix, i, len(in))
			copy(out, in[:i])
		}
	}
	for i, p := range in {
		if len(p.Evidence) == 0 || len(m.t.ExcludePrefixes) > 0 && m.t.ExcludedPrefix(p.Prefix) {
			copied(i)
			report(p)
			continue
		}
		keep := len(p.Origins) == 0
		changed := false
		for _, o := range p.Origins {
			if m.asns[o] != nil {
				keep = true
			} else {
				changed = true
			}
		}
		for _, o := range p.Upstreams {
			if m.asns[o] != nil {
				keep, changed = true, true
			}
		}
		if !keep {
			copied(i)
			report(p)
			continue
		}
		if changed {
			copied(i)
			q := Prefix{Prefix: p.Prefix, Origins: []uint32{}, Evidence: p.Evidence}
			for _, o := range p.Origins {
				if m.asns[o] != nil {
					q.Origins = append(q.Origins, o)
				}
			}
			for _, o := range p.Upstreams {
				if m.asns[o] != nil {
					q.Origins = append(q.Origins, o)
				} else {
					q.Upstreams = append(q.Upstreams, o)
				}
			}
			p = q
		}
		if out != nil {
			out = append(out, p)
		}
	}
	if out == nil {
		return in, dropped
	}
	return out, dropped
}

// Select applies the current target definitions to a stored snapshot (the
// embedded one, or a file): only configured targets are kept, and
// exclusions and the name-only opt-in are honoured. Targets missing from
// the snapshot are returned empty and listed as incomplete. The result
// shares the prefixes' origins and evidence with s.
func Select(s *Snapshot, targets []Target) *Snapshot {
	out := &Snapshot{GeneratedAt: s.GeneratedAt, Generator: s.Generator, Provenance: s.Provenance}
	out.Incomplete = append(out.Incomplete, s.Incomplete...)
	out.Dropped = append(out.Dropped, s.Dropped...)
	for ti := range targets {
		t := &targets[ti]
		src := s.Target(t.Name)
		if src == nil {
			out.Incomplete = append(out.Incomplete, Incomplete{Source: "snapshot", Target: t.Name, Error: "target not in snapshot"})
			out.Targets = append(out.Targets, TargetResult{Name: t.Name, Description: t.Description, ID: t.ID})
			continue
		}
		m := newMerger(t)
		for _, a := range src.ASNs {
			for _, ev := range a.Evidence {
				m.addASN(ASNFact{ASN: a.ASN, Name: a.Name, Evidence: ev})
			}
		}
		inSnapshot := map[uint32]bool{}
		for _, a := range src.ASNs {
			inSnapshot[a.ASN] = true
		}
		r := m.result()
		var dropped []SnapshotDrop
		r.Prefixes, dropped = m.selectPrefixes(src.Prefixes, inSnapshot)
		out.Dropped = append(out.Dropped, dropped...)
		r.ID = t.ID
		if r.Description == "" {
			r.Description = src.Description
		}
		out.Targets = append(out.Targets, r)
	}
	out.Normalize()
	return out
}
