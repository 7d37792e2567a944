package asn

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/asfence/asfence/field"
)

// Target is one organisation whose networks are to be blocked.
type Target struct {
	Name        string
	Description string
	// ID tags the target's routes (BGP large community <asn>:666:<ID>).
	ID uint32
	// ASNs are the seed ASNs, each with the evidence for including it.
	ASNs []SeedASN
	// NameOnly lists ASNs attributed by holder name alone. They are used
	// only when IncludeNameOnly is set.
	NameOnly        []SeedASN
	IncludeNameOnly bool
	// ASSets are IRR AS-SETs whose members belong to the target.
	ASSets []string
	// Names are organisation names as registries spell them; they match
	// holder names case-insensitively on word boundaries.
	Names           []string
	ExcludeASNs     []uint32
	ExcludePrefixes []netip.Prefix
}

// SeedASN is an ASN configured or built in for a target.
type SeedASN struct {
	ASN  uint32
	Name string
	Why  string
}

// ActiveASNs returns the seed ASNs in use (name-only ones when opted in),
// minus exclusions.
func (t *Target) ActiveASNs() []SeedASN {
	out := slices.Clone(t.ASNs)
	if t.IncludeNameOnly {
		out = append(out, t.NameOnly...)
	}
	return slices.DeleteFunc(out, func(s SeedASN) bool { return t.Excluded(s.ASN) })
}

// Excluded reports whether an ASN is excluded from the target.
func (t *Target) Excluded(asn uint32) bool { return slices.Contains(t.ExcludeASNs, asn) }

// IsNameOnly reports whether asn is one of the name-only ASNs.
func (t *Target) IsNameOnly(asn uint32) bool {
	return slices.ContainsFunc(t.NameOnly, func(s SeedASN) bool { return s.ASN == asn })
}

// ExcludedPrefix reports whether p lies inside (or equals) an excluded prefix.
func (t *Target) ExcludedPrefix(p netip.Prefix) bool {
	for _, x := range t.ExcludePrefixes {
		if x.Bits() <= p.Bits() && x.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// NameMatcher returns a matcher for the target's organisation names, or nil
// when it has none.
func (t *Target) NameMatcher() *regexp.Regexp {
	if len(t.Names) == 0 {
		return nil
	}
	q := make([]string, len(t.Names))
	for i, n := range t.Names {
		q[i] = regexp.QuoteMeta(n)
	}
	return regexp.MustCompile(`(?i)\b(?:` + strings.Join(q, "|") + `)\b`) // quoted input: always compiles
}

var targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidTargetName checks a target name: it appears in list names, file
// names and metrics labels, so it is kept to a safe alphabet.
func ValidTargetName(s string) error {
	if !targetNameRE.MatchString(s) {
		return fmt.Errorf("invalid target name %q (use 1-32 of a-z, 0-9, '-', '_', starting with a letter or digit)", s)
	}
	return nil
}

var asSetRE = regexp.MustCompile(`^(?i)(AS[0-9]+:)*AS-[A-Z0-9_-]+(:(AS-[A-Z0-9_-]+|AS[0-9]+))*$`)

// ValidASSet checks RPSL as-set name syntax (RFC 2622 §5.1, hierarchical
// names included).
func ValidASSet(s string) bool { return asSetRE.MatchString(s) }

// TargetConfig is a target as written in the config file. A name equal to
// a built-in target extends it (or replaces it with replace: true).
type TargetConfig struct {
	Name            string   `yaml:"name"`
	Description     string   `yaml:"description"`
	ID              uint32   `yaml:"id"`
	Replace         bool     `yaml:"replace"`
	ASNs            []uint32 `yaml:"asns"`
	ASSets          []string `yaml:"as_sets"`
	Names           []string `yaml:"names"`
	IncludeNameOnly *bool    `yaml:"include_name_only"`
	ExcludeASNs     []uint32 `yaml:"exclude_asns"`
	ExcludePrefixes []string `yaml:"exclude_prefixes"`
}

// BuildTargets turns the configured targets into Targets, merging with the
// built-ins. With no configured targets, the built-ins are used as they are.
// The error, if any, is a field.List whose paths index cfg ("[2].id"); the
// targets that are valid are returned with it.
func BuildTargets(cfg []TargetConfig) ([]Target, error) {
	if len(cfg) == 0 {
		return Builtin(), nil
	}
	var p field.List
	var out []Target
	var at []int // at[k]: the index in cfg of out[k]
	seenName := map[string]bool{}
	seenID := map[uint32]string{}
	for i, tc := range cfg {
		tp := field.Path(i)
		if err := ValidTargetName(tc.Name); err != nil {
			p.Add(field.Path(tp, "name"), "%v", err)
			continue
		}
		if seenName[tc.Name] {
			p.Add(field.Path(tp, "name"), "duplicate target %q", tc.Name)
			continue
		}
		seenName[tc.Name] = true
		t := Target{Name: tc.Name}
		if b, ok := BuiltinTarget(tc.Name); ok {
			if tc.Replace {
				t.ID = b.ID // the tag routers see stays stable
			} else {
				t = b
			}
		}
		if tc.Description != "" {
			t.Description = tc.Description
		}
		if tc.ID != 0 {
			t.ID = tc.ID
		}
		for j, a := range tc.ASNs {
			if a == 0 || a == 23456 {
				p.Add(field.Path(tp, "asns", j), "invalid ASN %d", a)
				continue
			}
			if !slices.ContainsFunc(t.ASNs, func(s SeedASN) bool { return s.ASN == a }) {
				t.ASNs = append(t.ASNs, SeedASN{ASN: a, Why: "configured"})
			}
		}
		for j, s := range tc.ASSets {
			if !ValidASSet(s) {
				p.Add(field.Path(tp, "as_sets", j), "invalid AS-SET name %q", s)
				continue
			}
			if !slices.Contains(t.ASSets, strings.ToUpper(s)) {
				t.ASSets = append(t.ASSets, strings.ToUpper(s))
			}
		}
		for j, n := range tc.Names {
			if strings.TrimSpace(n) == "" {
				p.Add(field.Path(tp, "names", j), "empty name")
				continue
			}
			if !slices.Contains(t.Names, n) {
				t.Names = append(t.Names, n)
			}
		}
		if tc.IncludeNameOnly != nil {
			t.IncludeNameOnly = *tc.IncludeNameOnly
		}
		for j, a := range tc.ExcludeASNs {
			if a == 0 {
				p.Add(field.Path(tp, "exclude_asns", j), "invalid ASN 0")
				continue
			}
			t.ExcludeASNs = append(t.ExcludeASNs, a)
		}
		for j, s := range tc.ExcludePrefixes {
			pf, err := ParsePrefix(s)
			if err != nil {
				p.Add(field.Path(tp, "exclude_prefixes", j), "%v", err)
				continue
			}
			t.ExcludePrefixes = append(t.ExcludePrefixes, pf)
		}
		if len(t.ASNs) == 0 && len(t.ASSets) == 0 && len(t.Names) == 0 && len(t.NameOnly) == 0 {
			p.Add(tp, "target %q has no asns, as_sets or names: nothing to resolve", tc.Name)
		}
		out = append(out, t)
		at = append(at, i)
	}
	// IDs: keep explicit and built-in ones, number the rest after them.
	next := uint32(1)
	for k := range out {
		if out[k].ID == 0 {
			continue
		}
		if other, dup := seenID[out[k].ID]; dup {
			p.Add(field.Path(at[k], "id"), "id %d is also used by target %q", out[k].ID, other)
		}
		seenID[out[k].ID] = out[k].Name
	}
	for i := range out {
		if out[i].ID != 0 {
			continue
		}
		for seenID[next] != "" {
			next++
		}
		out[i].ID = next
		seenID[next] = out[i].Name
	}
	return out, p.Err()
}

// SelectTargets keeps the named targets; an unknown name is an error.
func SelectTargets(all []Target, names []string) ([]Target, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Target
	for _, n := range names {
		i := slices.IndexFunc(all, func(t Target) bool { return t.Name == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, t := range all {
				known[j] = t.Name
			}
			return nil, fmt.Errorf("unknown target %q (known: %s)", n, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out, func(t Target) bool { return t.Name == n }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}
