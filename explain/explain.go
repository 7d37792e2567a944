// Package explain answers, for an address, a prefix or an ASN, whether it
// is blocked, by which target and which list entries, what every source
// said about it (also where they disagree), and what the policy did. It
// reads a Snapshot and the Intent the policy made of it; the CLI's
// `asfence explain` and the review console's search box use it.
package explain

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// MaxInside bounds the target prefixes listed inside a queried prefix (all
// are counted).
const MaxInside = 100

// Roles of a statement.
const (
	// RoleAttests: the source says the prefix is the target's.
	RoleAttests = "attests"
	// RoleUpstream: a routing table shows an AS that is not the target's
	// originating the prefix or routes inside it.
	RoleUpstream = "upstream"
	// RoleExcluded: the source attests it, but policy.exclude_sources
	// says its word does not count.
	RoleExcluded = "excluded"
	// RoleNote: a note (the built-in definitions, the policy's cut).
	RoleNote = "note"
)

// Statement is one source's evidence with its kind and what it says.
type Statement struct {
	Source string    `json:"source"`
	Kind   asn.Kind  `json:"kind"`
	Role   string    `json:"role"`
	Detail string    `json:"detail,omitempty"`
	Seen   time.Time `json:"seen"`
}

// Entries are the list entries of a target that hold a prefix.
type Entries struct {
	// RouteFilter is the entry of the target's prefix list that matches
	// the prefix ("71.18.0.0/21 le 32").
	RouteFilter string `json:"route_filter,omitempty"`
	// Cover is the entry of the address filters (ACLs, nftables, FlowSpec,
	// RTBH aggregates) that contains it.
	Cover string `json:"cover,omitempty"`
}

// Match is one target prefix related to the query.
type Match struct {
	Target string       `json:"target"`
	Prefix netip.Prefix `json:"prefix"`
	// Relation: "equal", "covers" (the prefix contains the query) or
	// "inside" (the prefix lies inside the queried prefix).
	Relation  string      `json:"relation"`
	Origins   []uint32    `json:"origins"`
	Upstreams []uint32    `json:"upstreams,omitempty"`
	Kinds     []asn.Kind  `json:"kinds"`
	Sources   []string    `json:"sources"`
	Entries   Entries     `json:"entries"`
	Evidence  []Statement `json:"evidence"`
	// Disagreements says where the sources disagree about the prefix.
	Disagreements []string `json:"disagreements,omitempty"`
}

// Dropped is a policy decision not to block something overlapping the
// query, with what the sources said about it.
type Dropped struct {
	policy.Drop
	Origins   []uint32    `json:"origins,omitempty"`
	Upstreams []uint32    `json:"upstreams,omitempty"`
	Kinds     []asn.Kind  `json:"kinds,omitempty"`
	Evidence  []Statement `json:"evidence,omitempty"`
}

// ASNMatch is a target's origin ASN (an ASN query).
type ASNMatch struct {
	Target   string `json:"target"`
	ASN      uint32 `json:"asn"`
	Name     string `json:"name,omitempty"`
	NameOnly bool   `json:"name_only,omitempty"`
	// Filtered: the ASN is in the target's origin AS-path filter.
	Filtered bool `json:"filtered"`
	// Prefixes counts the target's accepted prefixes it originates.
	Prefixes int         `json:"prefixes"`
	Evidence []Statement `json:"evidence"`
}

// Result answers one query.
type Result struct {
	Query string `json:"query"`
	// Blocked: the queried space lies wholly inside a target prefix
	// (traffic to and from it is dropped; RTBH and the address filters
	// hold it). For an ASN: it is a filtered origin.
	Blocked bool `json:"blocked"`
	// PartlyBlocked: target prefixes lie inside the queried prefix.
	PartlyBlocked bool `json:"partly_blocked,omitempty"`
	// RouteRejected: a route for exactly the queried prefix is rejected by
	// the route filters (an exact entry, or or-longer within the bound).
	RouteRejected bool `json:"route_rejected,omitempty"`
	// Matches are the target prefixes containing the query, most specific
	// first.
	Matches []Match `json:"matches"`
	// Inside are target prefixes inside a queried prefix (the first
	// MaxInside of InsideTotal).
	Inside      []Match `json:"inside,omitempty"`
	InsideTotal int     `json:"inside_total,omitempty"`
	// Dropped are the policy's drops overlapping the query (or of the ASN).
	Dropped []Dropped `json:"dropped"`
	// ASN is set for an ASN query; ASNs are the targets it is an origin of.
	ASN  uint32     `json:"asn,omitempty"`
	ASNs []ASNMatch `json:"asns,omitempty"`

	// prefix is the parsed query (invalid for an ASN).
	prefix netip.Prefix
}

// Prefix returns the queried prefix (an address as a /32 or /128); it is
// invalid for an ASN query.
func (r *Result) Prefix() netip.Prefix { return r.prefix }

// IsAddr reports whether the query was one address.
func (r *Result) IsAddr() bool { return r.prefix.IsValid() && r.prefix.IsSingleIP() }

// Parse reads a query: an address, a prefix (host bits are masked), or an
// ASN ("AS64500", "as64500", "64500"). It returns the prefix or the ASN.
func Parse(q string) (netip.Prefix, uint32, error) {
	q = strings.TrimSpace(q)
	s := q
	if len(s) > 2 && strings.EqualFold(s[:2], "AS") {
		s = s[2:]
	}
	if !strings.ContainsAny(q, ".:/") {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil && n > 0 {
			return netip.Prefix{}, uint32(n), nil
		}
	}
	if p, err := netip.ParsePrefix(q); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), 0, nil
	}
	a, err := netip.ParseAddr(q)
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("%q is neither an address, a prefix nor an ASN (e.g. 203.0.113.7, 2001:db8::/32, AS64500)", q)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), 0, nil
}

// Explainer answers queries about one Snapshot and its Intent. Build it
// once and ask it many times (it indexes the list entries lazily).
type Explainer struct {
	snap  *asn.Snapshot
	in    *policy.Intent
	pol   *policy.Policy
	kinds asn.SourceKinds
	// entries are the list entries of each target and family, made when
	// first needed.
	mu      sync.Mutex
	entries map[entryKey]entryLists
}

type entryKey struct {
	target string
	fam    prefixset.Family
}

type entryLists struct {
	routeFilter []prefixset.Range
	cover       []netip.Prefix
}

// New returns an Explainer for a normalized snapshot and the Intent the
// policy made of it. snap may be nil (only the Intent's evidence is then
// shown). It is safe for concurrent use.
func New(snap *asn.Snapshot, in *policy.Intent) *Explainer {
	e := &Explainer{snap: snap, in: in, entries: map[entryKey]entryLists{}}
	if snap != nil {
		e.kinds = snap.SourceKinds()
	}
	return e
}

// WithPolicy tells the Explainer the policy that made the Intent, so that
// the statements of sources it excludes are marked as such in dropped
// prefixes too (kept prefixes show them without it).
func (e *Explainer) WithPolicy(pol policy.Policy) *Explainer {
	e.pol = &pol
	return e
}

// snapshotPrefix finds a target's prefix in the snapshot (its prefixes are
// sorted: Normalize).
func (e *Explainer) snapshotPrefix(target string, p netip.Prefix) *asn.Prefix {
	if e.snap == nil {
		return nil
	}
	t := e.snap.Target(target)
	if t == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(t.Prefixes, p, func(x asn.Prefix, p netip.Prefix) int { return asn.ComparePrefix(x.Prefix, p) })
	if !ok {
		return nil
	}
	return &t.Prefixes[i]
}

// Query answers q (see Parse).
func (e *Explainer) Query(q string) (*Result, error) {
	qp, n, err := Parse(q)
	if err != nil {
		return nil, err
	}
	if n != 0 {
		return e.asnQuery(strings.TrimSpace(q), n), nil
	}
	r := &Result{Query: strings.TrimSpace(q), prefix: qp, Matches: []Match{}, Dropped: []Dropped{}}
	if r.IsAddr() {
		r.Query = qp.Addr().String()
	} else {
		r.Query = qp.String()
	}
	for ti := range e.in.Targets {
		t := &e.in.Targets[ti]
		for pi := range t.Prefixes {
			p := &t.Prefixes[pi]
			switch {
			case p.Prefix.Bits() <= qp.Bits() && p.Prefix.Contains(qp.Addr()):
				rel := "covers"
				if p.Prefix == qp {
					rel = "equal"
				}
				r.Matches = append(r.Matches, e.match(t.Name, p, rel))
				if p.Prefix == qp || routeFilterMatches(e.in.RouteFilter, p.Prefix, qp) {
					r.RouteRejected = true
				}
			case qp.Bits() < p.Prefix.Bits() && qp.Contains(p.Prefix.Addr()):
				r.InsideTotal++
				if len(r.Inside) < MaxInside {
					r.Inside = append(r.Inside, e.match(t.Name, p, "inside"))
				}
			}
		}
	}
	slices.SortStableFunc(r.Matches, func(a, b Match) int { return cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()) })
	r.Blocked = len(r.Matches) > 0
	r.PartlyBlocked = !r.Blocked && r.InsideTotal > 0
	for _, d := range e.in.Dropped {
		if dp, err := netip.ParsePrefix(d.Prefix); err == nil && dp.Overlaps(qp) {
			r.Dropped = append(r.Dropped, e.dropped(d, dp))
		}
	}
	return r, nil
}

func (e *Explainer) asnQuery(q string, n uint32) *Result {
	r := &Result{Query: q, ASN: n, Matches: []Match{}, Dropped: []Dropped{}}
	if e.snap != nil {
		for ti := range e.snap.Targets {
			t := &e.snap.Targets[ti]
			for _, a := range t.ASNs {
				if a.ASN != n {
					continue
				}
				m := ASNMatch{Target: t.Name, ASN: n, Name: a.Name, NameOnly: a.NameOnly, Evidence: e.statements(a.Evidence, nil)}
				if it := e.in.Target(t.Name); it != nil {
					m.Filtered = slices.Contains(it.ASNs, n)
					for _, p := range it.Prefixes {
						if slices.Contains(p.Origins, n) {
							m.Prefixes++
						}
					}
				}
				r.Blocked = r.Blocked || m.Filtered
				r.ASNs = append(r.ASNs, m)
			}
		}
	} else {
		for _, t := range e.in.Targets {
			if slices.Contains(t.ASNs, n) {
				r.Blocked = true
				r.ASNs = append(r.ASNs, ASNMatch{Target: t.Name, ASN: n, Filtered: true})
			}
		}
	}
	for _, d := range e.in.Dropped {
		if d.ASN == n {
			r.Dropped = append(r.Dropped, Dropped{Drop: d})
		}
	}
	return r
}

// match describes an accepted prefix of a target.
func (e *Explainer) match(target string, p *asn.Prefix, rel string) Match {
	m := Match{Target: target, Prefix: p.Prefix, Relation: rel, Origins: p.Origins, Upstreams: p.Upstreams}
	// The snapshot's prefix has every statement; the Intent's lacks the
	// excluded sources' (and a part cut by an exception is not in the
	// snapshot).
	ev := p.Evidence
	var excluded func(asn.Evidence) bool
	if sp := e.snapshotPrefix(target, p.Prefix); sp != nil {
		ev = sp.Evidence
		excluded = func(x asn.Evidence) bool {
			return !slices.ContainsFunc(p.Evidence, func(k asn.Evidence) bool { return k.Source == x.Source && k.Detail == x.Detail })
		}
	}
	m.Evidence = e.statements(ev, excluded)
	m.Sources, m.Kinds = attesting(m.Evidence)
	m.Entries = e.entriesOf(target, p.Prefix)
	m.Disagreements = disagreements(target, p.Origins, p.Upstreams, m.Evidence)
	return m
}

func (e *Explainer) dropped(d policy.Drop, p netip.Prefix) Dropped {
	out := Dropped{Drop: d}
	if sp := e.snapshotPrefix(d.Target, p); sp != nil {
		out.Origins, out.Upstreams = sp.Origins, sp.Upstreams
		var excluded func(asn.Evidence) bool
		if e.pol != nil {
			rule := e.pol.SourceRule(d.Target)
			excluded = func(x asn.Evidence) bool { return rule.Excludes(x.Source, e.kinds.Of(x.Source)) }
		}
		out.Evidence = e.statements(sp.Evidence, excluded)
		_, out.Kinds = attesting(out.Evidence)
	}
	return out
}

// statements describes evidence; excluded (if not nil) says which
// attesting evidence the policy does not count.
func (e *Explainer) statements(ev []asn.Evidence, excluded func(asn.Evidence) bool) []Statement {
	out := make([]Statement, 0, len(ev))
	for _, x := range ev {
		s := Statement{Source: x.Source, Kind: e.kinds.Of(x.Source), Detail: x.Detail, Seen: x.Seen.UTC()}
		switch {
		case asn.IsUpstreamEvidence(x):
			s.Role = RoleUpstream
		case !e.kinds.Attests(x):
			s.Role = RoleNote
		case excluded != nil && excluded(x):
			s.Role = RoleExcluded
		default:
			s.Role = RoleAttests
		}
		out = append(out, s)
	}
	return out
}

// attesting returns the sources and kinds of the attesting statements.
func attesting(st []Statement) (sources []string, kinds []asn.Kind) {
	sources, kinds = []string{}, []asn.Kind{}
	for _, s := range st {
		if s.Role != RoleAttests {
			continue
		}
		if !slices.Contains(sources, s.Source) {
			sources = append(sources, s.Source)
		}
		if !slices.Contains(kinds, s.Kind) {
			kinds = append(kinds, s.Kind)
		}
	}
	slices.Sort(sources)
	slices.Sort(kinds)
	return sources, kinds
}

// disagreements says where sources disagree: routing tables showing other
// ASes announcing what other sources attribute to the target, and
// attestations the policy does not count.
func disagreements(target string, origins, upstreams []uint32, st []Statement) []string {
	var out []string
	if len(upstreams) > 0 {
		var by, attest []string
		for _, s := range st {
			switch s.Role {
			case RoleUpstream:
				if !slices.Contains(by, s.Source) {
					by = append(by, s.Source)
				}
			case RoleAttests:
				if !slices.Contains(attest, s.Source) {
					attest = append(attest, s.Source)
				}
			}
		}
		who := "with no origin"
		if len(origins) > 0 {
			who = "originated by " + asList(origins)
		}
		out = append(out, fmt.Sprintf("routing tables (%s) show %s, not %s's, originating it or routes inside it; %s attribute it to %s (%s)",
			strings.Join(by, ", "), asList(upstreams), target, strings.Join(attest, ", "), target, who))
	}
	var excluded []string
	for _, s := range st {
		if s.Role == RoleExcluded && !slices.Contains(excluded, s.Source) {
			excluded = append(excluded, s.Source)
		}
	}
	if len(excluded) > 0 {
		out = append(out, fmt.Sprintf("%s also attribute it to %s, but policy.exclude_sources does not count them", strings.Join(excluded, ", "), target))
	}
	return out
}

func asList(as []uint32) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = "AS" + strconv.FormatUint(uint64(a), 10)
	}
	return strings.Join(s, ", ")
}

// entriesOf finds the route-filter and address-filter entries of a target
// that hold p.
func (e *Explainer) entriesOf(target string, p netip.Prefix) Entries {
	k := entryKey{target, prefixset.Of(p)}
	e.mu.Lock()
	l, ok := e.entries[k]
	if !ok {
		l = entryLists{routeFilter: e.in.RouteFilterEntries(target, k.fam), cover: e.in.Coverage(target, k.fam)}
		e.entries[k] = l
	}
	e.mu.Unlock()
	var out Entries
	for _, r := range l.routeFilter {
		if r.Matches(p) {
			out.RouteFilter = r.String()
			break
		}
	}
	for _, c := range l.cover {
		if c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
			out.Cover = c.String()
			break
		}
	}
	return out
}

// routeFilterMatches: a route for q is caught by the or-longer entry of p.
func routeFilterMatches(o prefixset.RouteFilterOptions, p, q netip.Prefix) bool {
	if !o.OrLonger {
		return false
	}
	maxLen := o.MaxLength6
	if p.Addr().Is4() {
		maxLen = o.MaxLength4
	}
	if maxLen <= 0 || maxLen > p.Addr().BitLen() {
		maxLen = p.Addr().BitLen()
	}
	return q.Bits() <= maxLen
}
