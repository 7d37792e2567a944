// Package policy turns a resolved Snapshot into the Intent: the final,
// policy-checked prefix sets and origin ASNs per target that renderers and
// the BGP speaker consume. The guards live here (protect list, bogons,
// default routes, length bounds, exceptions), each dropped prefix or ASN
// reported with its reason; Compare says what changed between two Intents.
package policy

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/prefixset"
)

// PolicyConfig is the `policy:` block of the config file.
type PolicyConfig struct {
	// Protect lists the operator's own space and critical services: any
	// target prefix overlapping one of them is dropped, never emitted.
	Protect []string `yaml:"protect"`
	// Exceptions are never blocked: their prefixes are cut out of target
	// prefixes, their ASNs are removed from origin filters.
	Exceptions struct {
		Prefixes []string `yaml:"prefixes"`
		ASNs     []uint32 `yaml:"asns"`
	} `yaml:"exceptions"`
	IPv4 LengthBounds `yaml:"ipv4"`
	IPv6 LengthBounds `yaml:"ipv6"`
	// MoreSpecifics makes route filters match more-specifics of each target
	// route (le 32 / le 128, or up to max_length). Default true.
	MoreSpecifics *bool `yaml:"more_specifics"`
	// AllowBogons disables the bogon guard (documentation ranges in labs).
	AllowBogons bool `yaml:"allow_bogons"`
	// MinSources is how many independent kinds of source (asn.Kind: a
	// routing table, an IRR route object, a registration, a ROA, a per-ASN
	// list, ...) must attest a prefix for it to be blocked (default 1).
	MinSources int `yaml:"min_sources"`
	// ExcludeSources names sources whose word does not count: evidence
	// source names ("file:cloud-ip-ranges"), patterns ("table:ris-*") or
	// kinds ("cloud-ranges"). A prefix attested only by them is dropped.
	ExcludeSources []string `yaml:"exclude_sources"`
	// Targets sets min_sources and exclude_sources per target: a target's
	// min_sources replaces the global one, its exclude_sources add to the
	// global ones.
	Targets map[string]TargetPolicyConfig `yaml:"targets"`
}

// TargetPolicyConfig is one target's entry under `policy.targets`.
type TargetPolicyConfig struct {
	MinSources     int      `yaml:"min_sources"`
	ExcludeSources []string `yaml:"exclude_sources"`
}

// LengthBounds limits the prefix lengths accepted from registries, and the
// longest more-specific that route filters match.
type LengthBounds struct {
	MinLength int `yaml:"min_length"`
	MaxLength int `yaml:"max_length"`
	// FilterMaxLength caps "le" in route filters (default 32 / 128).
	FilterMaxLength int `yaml:"filter_max_length"`
}

// Policy is a validated PolicyConfig.
type Policy struct {
	Protect           []netip.Prefix
	ExceptionPrefixes []netip.Prefix
	ExceptionASNs     []uint32
	Min4, Max4        int
	Min6, Max6        int
	RouteFilter       prefixset.RouteFilterOptions
	AllowBogons       bool
	// Sources is the rule on sources for every target; TargetSources
	// replaces it for the targets listed.
	Sources       SourceRule
	TargetSources map[string]SourceRule
}

// SourceRule says which sources count for a prefix, and how many kinds of
// them it needs.
type SourceRule struct {
	MinSources int
	Exclude    []string
}

// SourceRule returns the rule on sources for a target.
func (pol Policy) SourceRule(target string) SourceRule {
	if r, ok := pol.TargetSources[target]; ok {
		return r
	}
	if pol.Sources.MinSources == 0 {
		return SourceRule{MinSources: 1, Exclude: pol.Sources.Exclude}
	}
	return pol.Sources
}

// active reports whether the rule can drop anything.
func (r SourceRule) active() bool { return r.MinSources > 1 || len(r.Exclude) > 0 }

// Excludes reports whether evidence from source (of kind k) does not
// count: an entry names the source, matches it as a pattern, or names its
// kind.
func (r SourceRule) Excludes(source string, k asn.Kind) bool {
	for _, x := range r.Exclude {
		if x == source || x == string(k) {
			return true
		}
		if ok, _ := path.Match(x, source); ok {
			return true
		}
	}
	return false
}

// Judge says whether p has enough sources under the rule: the attesting
// sources and kinds that count, the excluded sources, and a drop reason
// and detail when it has not ("" when it has).
func (r SourceRule) Judge(kinds asn.SourceKinds, p *asn.Prefix) (counted []string, countedKinds []asn.Kind, excluded []string, reason, detail string) {
	for _, e := range p.Evidence {
		if !kinds.Attests(e) {
			continue
		}
		k := kinds.Of(e.Source)
		if r.Excludes(e.Source, k) {
			if !slices.Contains(excluded, e.Source) {
				excluded = append(excluded, e.Source)
			}
			continue
		}
		if !slices.Contains(counted, e.Source) {
			counted = append(counted, e.Source)
		}
		if !slices.Contains(countedKinds, k) {
			countedKinds = append(countedKinds, k)
		}
	}
	slices.Sort(counted)
	slices.Sort(countedKinds)
	slices.Sort(excluded)
	need := max(r.MinSources, 1)
	switch {
	case len(counted) == 0 && len(excluded) > 0:
		return counted, countedKinds, excluded, ReasonExcludedSource, "attested only by excluded sources: " + describeSources(kinds, excluded)
	case len(countedKinds) < need:
		d := fmt.Sprintf("attested by %d kind(s) of source, min_sources is %d", len(countedKinds), need)
		if len(counted) > 0 {
			d += ": " + describeSources(kinds, counted)
		}
		if len(excluded) > 0 {
			d += "; not counted (excluded): " + describeSources(kinds, excluded)
		}
		return counted, countedKinds, excluded, ReasonTooFewSources, d
	}
	return counted, countedKinds, excluded, "", ""
}

// describeSources lists sources with their kinds: "file:a (asn-list), table:b (routing-table)".
func describeSources(kinds asn.SourceKinds, sources []string) string {
	s := make([]string, len(sources))
	for i, src := range sources {
		s[i] = fmt.Sprintf("%s (%s)", src, kinds.Of(src))
	}
	return strings.Join(s, ", ")
}

// Default bounds: a registry answer shorter than these is far more likely an
// error (or a /8 that would black out a continent) than a target network.
const (
	DefaultMin4 = 10
	DefaultMax4 = 32
	DefaultMin6 = 19
	DefaultMax6 = 128
)

// Build validates the config. The error, if any, is a field.List with paths
// relative to the block ("protect[0]"); the Policy holds what is valid.
func (c PolicyConfig) Build() (Policy, error) {
	var p field.List
	pol := Policy{Min4: DefaultMin4, Max4: DefaultMax4, Min6: DefaultMin6, Max6: DefaultMax6, AllowBogons: c.AllowBogons}
	pol.RouteFilter.OrLonger = c.MoreSpecifics == nil || *c.MoreSpecifics
	for i, s := range c.Protect {
		pf, err := asn.ParsePrefix(s)
		if err != nil {
			p.Add(field.Path("protect", i), "%v", err)
			continue
		}
		pol.Protect = append(pol.Protect, pf)
	}
	for i, s := range c.Exceptions.Prefixes {
		pf, err := asn.ParsePrefix(s)
		if err != nil {
			p.Add(field.Path("exceptions", "prefixes", i), "%v", err)
			continue
		}
		pol.ExceptionPrefixes = append(pol.ExceptionPrefixes, pf)
	}
	for i, a := range c.Exceptions.ASNs {
		if a == 0 {
			p.Add(field.Path("exceptions", "asns", i), "invalid ASN 0")
			continue
		}
		pol.ExceptionASNs = append(pol.ExceptionASNs, a)
	}
	bounds := func(name string, b LengthBounds, bits int, min, max *int, fmax *int) {
		if b.MinLength != 0 {
			*min = b.MinLength
		}
		if b.MaxLength != 0 {
			*max = b.MaxLength
		}
		if *min < 1 || *min > bits {
			p.Add(field.Path(name, "min_length"), "must be 1-%d (a default route is never accepted)", bits)
		}
		if *max < 1 || *max > bits {
			p.Add(field.Path(name, "max_length"), "must be 1-%d", bits)
		}
		if *min > *max {
			p.Add(name, "min_length %d is above max_length %d", *min, *max)
		}
		*fmax = bits
		if b.FilterMaxLength != 0 {
			if b.FilterMaxLength < 1 || b.FilterMaxLength > bits {
				p.Add(field.Path(name, "filter_max_length"), "must be 1-%d", bits)
			}
			*fmax = b.FilterMaxLength
		}
	}
	bounds("ipv4", c.IPv4, 32, &pol.Min4, &pol.Max4, &pol.RouteFilter.MaxLength4)
	bounds("ipv6", c.IPv6, 128, &pol.Min6, &pol.Max6, &pol.RouteFilter.MaxLength6)
	sourceRule := func(at string, min int, exclude []string) SourceRule {
		if min < 0 || min > len(asn.Kinds) {
			p.Add(field.Path(at, "min_sources"), "must be 1-%d (kinds of source), got %d", len(asn.Kinds), min)
		}
		for i, x := range exclude {
			if strings.TrimSpace(x) == "" {
				p.Add(field.Path(at, "exclude_sources", i), "empty source name")
			} else if _, err := path.Match(x, ""); err != nil {
				p.Add(field.Path(at, "exclude_sources", i), "bad pattern %q: %v", x, err)
			}
		}
		return SourceRule{MinSources: min, Exclude: slices.Clone(exclude)}
	}
	pol.Sources = sourceRule("", c.MinSources, c.ExcludeSources)
	if pol.Sources.MinSources == 0 {
		pol.Sources.MinSources = 1
	}
	for name, tc := range c.Targets {
		if err := asn.ValidTargetName(name); err != nil {
			p.Add(field.Path("targets", name), "%v", err)
		}
		r := sourceRule(field.Path("targets", name), tc.MinSources, tc.ExcludeSources)
		if r.MinSources == 0 {
			r.MinSources = pol.Sources.MinSources
		}
		r.Exclude = append(slices.Clone(pol.Sources.Exclude), r.Exclude...)
		if pol.TargetSources == nil {
			pol.TargetSources = map[string]SourceRule{}
		}
		pol.TargetSources[name] = r
	}
	return pol, p.Err()
}

// DefaultPolicy is the policy of an empty config.
func DefaultPolicy() Policy {
	pol, _ := PolicyConfig{}.Build() // the defaults are valid
	return pol
}

// Drop reports a prefix or ASN left out of the Intent, and why.
type Drop struct {
	Target string `json:"target"`
	Prefix string `json:"prefix,omitempty"`
	ASN    uint32 `json:"asn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Drop reasons.
const (
	ReasonDefault     = "default-route"
	ReasonBogon       = "bogon"
	ReasonProtected   = "protected"
	ReasonTooShort    = "shorter-than-min-length"
	ReasonTooLong     = "longer-than-max-length"
	ReasonException   = "exception"
	ReasonExceptionAS = "exception-asn"
	// ReasonExcludedSource: every source attesting the prefix is in
	// exclude_sources.
	ReasonExcludedSource = "excluded-source"
	// ReasonTooFewSources: fewer kinds of source attest it than
	// min_sources.
	ReasonTooFewSources = "too-few-sources"
	// ReasonNoEvidence and ReasonOriginNotTarget: a stored snapshot's
	// prefix that its own content does not support (asn.Select leaves it
	// out; the policy reports it with its own drops).
	ReasonNoEvidence      = asn.DropNoEvidence
	ReasonOriginNotTarget = asn.DropOriginNotTarget
)

// DropCounts counts drops by reason.
func DropCounts(ds []Drop) map[string]int {
	counts := map[string]int{}
	for _, d := range ds {
		counts[d.Reason]++
	}
	return counts
}

// TargetIntent is the final, policy-checked content for one target.
type TargetIntent struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	ID          uint32 `json:"id"`
	// ASNs are the origin ASNs to filter (AS-path filters).
	ASNs []uint32 `json:"asns"`
	// Prefixes are the accepted prefixes, exact, with their evidence.
	Prefixes []asn.Prefix `json:"prefixes"`
}

// Exact returns the accepted prefixes of one family.
func (t *TargetIntent) Exact(f prefixset.Family) []netip.Prefix {
	n := 0
	for _, p := range t.Prefixes {
		if prefixset.Of(p.Prefix) == f {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]netip.Prefix, 0, n)
	for _, p := range t.Prefixes {
		if prefixset.Of(p.Prefix) == f {
			out = append(out, p.Prefix)
		}
	}
	return out
}

// Intent is the Snapshot after policy: what renderers and the BGP
// reconciler consume.
type Intent struct {
	SnapshotTime time.Time        `json:"snapshot_time"`
	Generator    string           `json:"generator,omitempty"`
	Incomplete   []asn.Incomplete `json:"incomplete"`
	Targets      []TargetIntent   `json:"targets"`
	Dropped      []Drop           `json:"dropped"`
	// RouteFilter is how route-filter entries are built from the prefixes.
	RouteFilter prefixset.RouteFilterOptions `json:"route_filter"`
}

// Target returns the named target or nil.
func (in *Intent) Target(name string) *TargetIntent {
	for i := range in.Targets {
		if in.Targets[i].Name == name {
			return &in.Targets[i]
		}
	}
	return nil
}

// RouteFilter returns the route-filter entries of a target (nil target:
// all targets together) for one family.
func (in *Intent) RouteFilterEntries(target string, f prefixset.Family) []prefixset.Range {
	return prefixset.RouteFilter(in.exact(target, f), in.RouteFilter)
}

// Coverage returns the minimal address cover of a target (empty name: all
// targets together) for one family.
func (in *Intent) Coverage(target string, f prefixset.Family) []netip.Prefix {
	return prefixset.Coverage(in.exact(target, f))
}

// Exact returns the accepted prefixes (not aggregated) of a target, or of
// all targets with an empty name.
func (in *Intent) Exact(target string, f prefixset.Family) []netip.Prefix { return in.exact(target, f) }

func (in *Intent) exact(target string, f prefixset.Family) []netip.Prefix {
	if target == "" && len(in.Targets) == 1 {
		return in.Targets[0].Exact(f)
	}
	var out []netip.Prefix
	for i := range in.Targets {
		if target == "" || in.Targets[i].Name == target {
			out = append(out, in.Targets[i].Exact(f)...)
		}
	}
	return out
}

// ASNs returns the origin ASNs of a target (empty name: all targets).
func (in *Intent) ASNs(target string) []uint32 {
	var out []uint32
	for i := range in.Targets {
		if target == "" || in.Targets[i].Name == target {
			out = append(out, in.Targets[i].ASNs...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Sources lists the evidence sources behind the Intent's prefixes.
func (in *Intent) Sources() []string {
	set := map[string]bool{}
	for _, t := range in.Targets {
		for _, p := range t.Prefixes {
			for _, e := range p.Evidence {
				set[e.Source] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// sortedUnique reports whether ps is in ComparePrefix order without repeats.
func sortedUnique(ps []asn.Prefix) bool {
	for i := 1; i < len(ps); i++ {
		if asn.ComparePrefix(ps[i-1].Prefix, ps[i].Prefix) >= 0 {
			return false
		}
	}
	return true
}

// Apply runs the policy over a snapshot. It is a pure function; the Intent
// shares the snapshot's prefixes (it changes none of them).
func (pol Policy) Apply(s *asn.Snapshot) *Intent {
	protect := prefixset.NewSet(pol.Protect)
	kinds := s.SourceKinds()
	in := &Intent{SnapshotTime: s.GeneratedAt, Generator: s.Generator, Incomplete: slices.Clone(s.Incomplete), RouteFilter: pol.RouteFilter}
	for _, d := range s.Dropped {
		in.Dropped = append(in.Dropped, Drop{Target: d.Target, Prefix: d.Prefix.String(), Reason: d.Reason, Detail: d.Detail})
	}
	for _, tr := range s.Targets {
		ti := TargetIntent{Name: tr.Name, Description: tr.Description, ID: tr.ID}
		rule := pol.SourceRule(tr.Name)
		drop := func(p netip.Prefix, asnum uint32, reason, detail string) {
			d := Drop{Target: tr.Name, ASN: asnum, Reason: reason, Detail: detail}
			if p.IsValid() {
				d.Prefix = p.String()
			}
			in.Dropped = append(in.Dropped, d)
		}
		excludedASN := map[uint32]bool{}
		for _, a := range tr.ASNs {
			if slices.Contains(pol.ExceptionASNs, a.ASN) {
				excludedASN[a.ASN] = true
				drop(netip.Prefix{}, a.ASN, ReasonExceptionAS, "listed in policy.exceptions.asns")
				continue
			}
			ti.ASNs = append(ti.ASNs, a.ASN)
		}
		// ti.Prefixes shares tr.Prefixes until a prefix is dropped or cut.
		shared := true
		unshare := func(i int) {
			if shared {
				shared = false
				ti.Prefixes = make([]asn.Prefix, i, len(tr.Prefixes))
				copy(ti.Prefixes, tr.Prefixes[:i])
			}
		}
		for i, p := range tr.Prefixes {
			pf := p.Prefix
			// Origins that are exceptions do not count; a prefix with only
			// excepted origins is not blocked.
			if len(p.Origins) > 0 && !slices.ContainsFunc(p.Origins, func(o uint32) bool { return !excludedASN[o] && !slices.Contains(pol.ExceptionASNs, o) }) {
				unshare(i)
				drop(pf, 0, ReasonExceptionAS, fmt.Sprintf("only originated by excepted ASNs %v", p.Origins))
				continue
			}
			if pf.Bits() == 0 {
				unshare(i)
				drop(pf, 0, ReasonDefault, "a default route is never blocked")
				continue
			}
			if !pol.AllowBogons {
				if why, ok := prefixset.Bogon(pf); ok {
					unshare(i)
					drop(pf, 0, ReasonBogon, why)
					continue
				}
			}
			if q, ok := protect.Overlap(pf); ok {
				unshare(i)
				drop(pf, 0, ReasonProtected, "overlaps protected "+q.String())
				continue
			}
			min, max := pol.Min4, pol.Max4
			if pf.Addr().Is6() {
				min, max = pol.Min6, pol.Max6
			}
			if pf.Bits() < min {
				unshare(i)
				drop(pf, 0, ReasonTooShort, fmt.Sprintf("/%d is shorter than min_length %d", pf.Bits(), min))
				continue
			}
			if pf.Bits() > max {
				unshare(i)
				drop(pf, 0, ReasonTooLong, fmt.Sprintf("/%d is longer than max_length %d", pf.Bits(), max))
				continue
			}
			if rule.active() {
				_, _, excluded, reason, detail := rule.Judge(kinds, &p)
				if reason != "" {
					unshare(i)
					drop(pf, 0, reason, detail)
					continue
				}
				if len(excluded) > 0 {
					// Kept on other sources' word: the excluded ones are
					// not cited for it.
					unshare(i)
					p.Evidence = slices.DeleteFunc(slices.Clone(p.Evidence), func(e asn.Evidence) bool {
						return kinds.Attests(e) && rule.Excludes(e.Source, kinds.Of(e.Source))
					})
				}
			}
			parts := []netip.Prefix{pf} // no exception cuts into it
			if len(pol.ExceptionPrefixes) > 0 {
				parts = prefixset.Subtract(pf, pol.ExceptionPrefixes)
			}
			if len(parts) == 1 && parts[0] == pf {
				if !shared {
					ti.Prefixes = append(ti.Prefixes, p)
				}
				continue
			}
			unshare(i)
			drop(pf, 0, ReasonException, fmt.Sprintf("exception cut out; %d remaining parts kept", len(parts)))
			for _, part := range parts {
				q := p
				q.Prefix = part
				q.Evidence = append(slices.Clone(p.Evidence), asn.Evidence{Source: "policy", Detail: "part of " + pf.String() + " outside exceptions", Seen: s.GeneratedAt})
				ti.Prefixes = append(ti.Prefixes, q)
			}
		}
		if shared && !sortedUnique(tr.Prefixes) {
			unshare(len(tr.Prefixes))
		}
		if shared {
			ti.Prefixes = tr.Prefixes
		} else {
			slices.SortFunc(ti.Prefixes, func(a, b asn.Prefix) int { return asn.ComparePrefix(a.Prefix, b.Prefix) })
			ti.Prefixes = slices.CompactFunc(ti.Prefixes, func(a, b asn.Prefix) bool { return a.Prefix == b.Prefix })
		}
		if ti.ASNs == nil {
			ti.ASNs = []uint32{}
		}
		if ti.Prefixes == nil {
			ti.Prefixes = []asn.Prefix{}
		}
		in.Targets = append(in.Targets, ti)
	}
	if in.Dropped == nil {
		in.Dropped = []Drop{}
	}
	if in.Incomplete == nil {
		in.Incomplete = []asn.Incomplete{}
	}
	return in
}
