// Package asn resolves which ASNs and prefixes belong to the target
// organisations, keeping for each one the evidence of why. Its Snapshot type
// (and JSON form) is asfence's interchange format.
package asn

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Evidence says which source claimed a fact, what exactly it said, and when.
type Evidence struct {
	// Source names the registry or input, e.g. "irr:RADB", "rir:apnic",
	// "rdap", "ripestat", "peeringdb", "rpki", "file:ipverse", "builtin".
	Source string    `json:"source"`
	Detail string    `json:"detail,omitempty"`
	Seen   time.Time `json:"seen"`
}

// ASN is one autonomous system attributed to a target.
type ASN struct {
	ASN  uint32 `json:"asn"`
	Name string `json:"name,omitempty"`
	// NameOnly marks an ASN attributed by holder name alone; such ASNs are
	// only blocked when the target opts in.
	NameOnly bool       `json:"name_only,omitempty"`
	Evidence []Evidence `json:"evidence"`
}

// Prefix is one prefix attributed to a target. Origins lists the target's
// ASNs seen originating or registered for it (empty when a source gave no
// origin). Upstreams lists other ASNs that routing tables show originating
// it or routes inside it (space registered to the target but announced by
// its upstream): they explain the prefix and are never target ASNs, so they
// never enter origin (AS-path) filters.
type Prefix struct {
	Prefix    netip.Prefix `json:"prefix"`
	Origins   []uint32     `json:"origins"`
	Upstreams []uint32     `json:"upstreams,omitempty"`
	Evidence  []Evidence   `json:"evidence"`
}

// TargetResult is what was resolved for one target.
type TargetResult struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	ID          uint32   `json:"id,omitempty"`
	ASNs        []ASN    `json:"asns"`
	Prefixes    []Prefix `json:"prefixes"`
}

// Incomplete records a source that failed: its facts are missing from the
// snapshot, which is therefore not a complete answer.
type Incomplete struct {
	Source string `json:"source"`
	Target string `json:"target,omitempty"`
	Error  string `json:"error"`
}

// Input records one input a snapshot was built from (its provenance).
type Input struct {
	Source string `json:"source"`
	Input  string `json:"input"`
	SHA256 string `json:"sha256,omitempty"`
	Note   string `json:"note,omitempty"`
	// Kind is the kind of source (see Kind), for sources whose name does
	// not say it (files named by the operator).
	Kind string `json:"kind,omitempty"`
}

// Snapshot is a resolved answer for a set of targets at one time.
type Snapshot struct {
	GeneratedAt time.Time      `json:"generated_at"`
	Generator   string         `json:"generator,omitempty"`
	Incomplete  []Incomplete   `json:"incomplete"`
	Provenance  []Input        `json:"provenance,omitempty"`
	Targets     []TargetResult `json:"targets"`
	// Dropped lists what Select left out of a stored snapshot because the
	// snapshot itself does not support it (not part of the JSON form: the
	// policy reports these drops with its own).
	Dropped []SnapshotDrop `json:"-"`
}

// Reasons of SnapshotDrop.
const (
	// DropNoEvidence: the prefix comes with no evidence at all.
	DropNoEvidence = "no-evidence"
	// DropOriginNotTarget: its origins are none of the target's ASNs in
	// the snapshot.
	DropOriginNotTarget = "origin-not-target"
)

// SnapshotDrop is a snapshot prefix that Select left out, and why.
type SnapshotDrop struct {
	Target string
	Prefix netip.Prefix
	Reason string
	Detail string
}

// Target returns the result for the named target, or nil.
func (s *Snapshot) Target(name string) *TargetResult {
	for i := range s.Targets {
		if s.Targets[i].Name == name {
			return &s.Targets[i]
		}
	}
	return nil
}

// Failed reports whether a source (by Incomplete.Source name) failed for the
// target (or for all targets).
func (s *Snapshot) Failed(source, target string) bool {
	for _, in := range s.Incomplete {
		if in.Source == source && (in.Target == "" || in.Target == target) {
			return true
		}
	}
	return false
}

// ComparePrefix orders IPv4 before IPv6, then by address, then by length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func compareEvidence(a, b Evidence) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Detail, b.Detail), a.Seen.Compare(b.Seen))
}

// normalizeEvidence sorts and de-duplicates (same source and detail: the
// latest sighting wins).
func normalizeEvidence(ev []Evidence) []Evidence {
	slices.SortFunc(ev, compareEvidence)
	out := ev[:0]
	for _, e := range ev {
		if n := len(out); n > 0 && out[n-1].Source == e.Source && out[n-1].Detail == e.Detail {
			if e.Seen.After(out[n-1].Seen) {
				out[n-1].Seen = e.Seen
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// Normalize sorts everything into canonical order, so that equal snapshots
// have equal JSON bytes.
func (s *Snapshot) Normalize() {
	s.GeneratedAt = s.GeneratedAt.UTC()
	for i := range s.Targets {
		t := &s.Targets[i]
		slices.SortFunc(t.ASNs, func(a, b ASN) int { return cmp.Compare(a.ASN, b.ASN) })
		for j := range t.ASNs {
			t.ASNs[j].Evidence = utcEvidence(normalizeEvidence(t.ASNs[j].Evidence))
		}
		slices.SortFunc(t.Prefixes, func(a, b Prefix) int { return ComparePrefix(a.Prefix, b.Prefix) })
		for j := range t.Prefixes {
			p := &t.Prefixes[j]
			slices.Sort(p.Origins)
			p.Origins = slices.Compact(p.Origins)
			if p.Origins == nil {
				p.Origins = []uint32{}
			}
			slices.Sort(p.Upstreams)
			p.Upstreams = slices.Compact(p.Upstreams)
			if len(p.Upstreams) == 0 {
				p.Upstreams = nil
			}
			p.Evidence = utcEvidence(normalizeEvidence(p.Evidence))
		}
		if t.ASNs == nil {
			t.ASNs = []ASN{}
		}
		if t.Prefixes == nil {
			t.Prefixes = []Prefix{}
		}
	}
	slices.SortFunc(s.Targets, func(a, b TargetResult) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Incomplete, func(a, b Incomplete) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target), cmp.Compare(a.Error, b.Error))
	})
	s.Incomplete = slices.Compact(s.Incomplete)
	if s.Incomplete == nil {
		s.Incomplete = []Incomplete{}
	}
	slices.SortFunc(s.Provenance, func(a, b Input) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Input, b.Input))
	})
	if s.Targets == nil {
		s.Targets = []TargetResult{}
	}
}

func utcEvidence(ev []Evidence) []Evidence {
	for i := range ev {
		ev[i].Seen = ev[i].Seen.UTC()
	}
	return ev
}
