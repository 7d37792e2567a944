// Package report sums up, per target, what the sources say and how far they
// agree: the address space each source and kind of source attests, the
// overlap between sources, the prefixes only one source attests, the space
// registered to a target but announced by others (upstreams), the
// cloud/hosting ranges, the name-only ASNs, the policy's drops and the
// largest prefixes. It reads a Snapshot and the Intent the policy made of
// it, and writes text, JSON or one self-contained HTML page.
package report

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// MaxRows bounds each list of prefixes in a report (all are counted).
const MaxRows = 20

// Space is an amount of address space: IPv4 addresses and IPv6 /48s
// (overlapping prefixes counted once), and the number of prefixes.
type Space struct {
	Prefixes int    `json:"prefixes"`
	IPv4     uint64 `json:"ipv4_addresses"`
	IPv6     uint64 `json:"ipv6_48s"`
}

func spaceOf(ps []netip.Prefix) Space {
	v4, v6 := prefixset.Size(ps)
	return Space{Prefixes: len(ps), IPv4: v4, IPv6: v6}
}

// SourceSpace is the space one source attests.
type SourceSpace struct {
	Source string   `json:"source"`
	Kind   asn.Kind `json:"kind"`
	Space
	// Only is the part of it no other source attests: the addresses no
	// other source's prefix holds, and the prefixes only it attests.
	Only Space `json:"only"`
}

// KindSpace is the space one kind of source attests.
type KindSpace struct {
	Kind asn.Kind `json:"kind"`
	Space
}

// Overlap is the space two sources both attest.
type Overlap struct {
	A    string `json:"a"`
	B    string `json:"b"`
	IPv4 uint64 `json:"ipv4_addresses"`
	IPv6 uint64 `json:"ipv6_48s"`
}

// Agreement counts the prefixes attested by a number of kinds of source.
type Agreement struct {
	Kinds int `json:"kinds"`
	Space
}

// Row is one prefix in a list.
type Row struct {
	Prefix    netip.Prefix `json:"prefix"`
	Origins   []uint32     `json:"origins"`
	Upstreams []uint32     `json:"upstreams,omitempty"`
	Sources   []string     `json:"sources"`
	Kinds     []asn.Kind   `json:"kinds"`
	// Blocked: the policy kept it.
	Blocked bool `json:"blocked"`
}

// List is a list of prefixes: the first MaxRows rows and the total.
type List struct {
	Total int `json:"total"`
	Space
	Rows []Row `json:"rows"`
}

// ASN is a name-only ASN of a target.
type ASN struct {
	ASN     uint32   `json:"asn"`
	Name    string   `json:"name,omitempty"`
	Sources []string `json:"sources"`
	// Filtered: it is in the origin AS-path filter (the target opts in).
	Filtered bool `json:"filtered"`
}

// DropCount counts the policy's drops of one reason.
type DropCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Target is the report of one target.
type Target struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	ASNs        int    `json:"asns"`
	// Attributed is what the sources attribute to the target; Blocked what
	// the policy kept of it.
	Attributed Space `json:"attributed"`
	Blocked    Space `json:"blocked"`
	// BySource and ByKind: the space each attests; Agreement: prefixes by
	// the number of kinds attesting them; Overlaps: the space each two
	// sources both attest (pairs with some overlap).
	BySource  []SourceSpace `json:"by_source"`
	ByKind    []KindSpace   `json:"by_kind"`
	Agreement []Agreement   `json:"agreement"`
	Overlaps  []Overlap     `json:"overlaps"`
	// SingleSource: prefixes only one source attests.
	SingleSource List `json:"single_source"`
	// Upstreams: space the target's sources attribute to it that routing
	// tables show announced by other ASes.
	Upstreams List `json:"upstreams"`
	// CloudRanges: prefixes a cloud or hosting range list attests (their
	// addresses may host third parties); CloudOnly those it alone attests.
	CloudRanges List  `json:"cloud_ranges"`
	CloudOnly   List  `json:"cloud_only"`
	NameOnly    []ASN `json:"name_only_asns"`
	// Drops are the policy's drops by reason, and the first of them.
	DropCounts []DropCount   `json:"drop_counts"`
	Drops      []policy.Drop `json:"drops"`
	DropsTotal int           `json:"drops_total"`
	// Largest are the largest prefixes of each family.
	Largest []Row `json:"largest"`
}

// Report covers every target of a snapshot.
type Report struct {
	SnapshotTime time.Time        `json:"snapshot_time"`
	Generator    string           `json:"generator,omitempty"`
	Incomplete   []asn.Incomplete `json:"incomplete"`
	Targets      []Target         `json:"targets"`
}

// Build makes the report of a snapshot and the Intent the policy made of
// it (a nil Intent: the default policy's).
func Build(s *asn.Snapshot, in *policy.Intent) *Report {
	if in == nil {
		in = policy.DefaultPolicy().Apply(s)
	}
	kinds := s.SourceKinds()
	r := &Report{SnapshotTime: s.GeneratedAt, Generator: s.Generator, Incomplete: slices.Clone(s.Incomplete), Targets: []Target{}}
	if r.Incomplete == nil {
		r.Incomplete = []asn.Incomplete{}
	}
	for ti := range s.Targets {
		r.Targets = append(r.Targets, buildTarget(&s.Targets[ti], in, kinds))
	}
	return r
}

func buildTarget(tr *asn.TargetResult, in *policy.Intent, kinds asn.SourceKinds) Target {
	t := Target{Name: tr.Name, Description: tr.Description, ASNs: len(tr.ASNs), BySource: []SourceSpace{}, ByKind: []KindSpace{},
		Agreement: []Agreement{}, Overlaps: []Overlap{}, NameOnly: []ASN{}, DropCounts: []DropCount{}, Drops: []policy.Drop{}, Largest: []Row{}}
	ti := in.Target(tr.Name)
	kept := map[netip.Prefix]bool{}
	var filtered []uint32
	if ti != nil {
		for _, p := range ti.Prefixes {
			kept[p.Prefix] = true
		}
		filtered = ti.ASNs
		t.Blocked = spaceOf(append(ti.Exact(prefixset.IPv4), ti.Exact(prefixset.IPv6)...))
	}
	all := make([]netip.Prefix, 0, len(tr.Prefixes))
	bySource := map[string][]netip.Prefix{}
	onlyBy := map[string][]netip.Prefix{}
	byKind := map[asn.Kind][]netip.Prefix{}
	byCount := map[int][]netip.Prefix{}
	var single, upstream, cloud, cloudOnly []Row
	var singleP, upstreamP, cloudP, cloudOnlyP []netip.Prefix
	rows := make([]Row, 0, len(tr.Prefixes))
	for i := range tr.Prefixes {
		p := &tr.Prefixes[i]
		srcs, ks := kinds.Attesting(p)
		row := Row{Prefix: p.Prefix, Origins: p.Origins, Upstreams: p.Upstreams, Sources: srcs, Kinds: ks, Blocked: kept[p.Prefix]}
		if row.Sources == nil {
			row.Sources = []string{}
		}
		if row.Kinds == nil {
			row.Kinds = []asn.Kind{}
		}
		rows = append(rows, row)
		all = append(all, p.Prefix)
		for _, src := range srcs {
			bySource[src] = append(bySource[src], p.Prefix)
		}
		for _, k := range ks {
			byKind[k] = append(byKind[k], p.Prefix)
		}
		byCount[len(ks)] = append(byCount[len(ks)], p.Prefix)
		if len(srcs) == 1 {
			onlyBy[srcs[0]] = append(onlyBy[srcs[0]], p.Prefix)
			single, singleP = append(single, row), append(singleP, p.Prefix)
		}
		if len(p.Upstreams) > 0 {
			upstream, upstreamP = append(upstream, row), append(upstreamP, p.Prefix)
		}
		if slices.Contains(ks, asn.KindCloudRanges) {
			cloud, cloudP = append(cloud, row), append(cloudP, p.Prefix)
			if len(ks) == 1 {
				cloudOnly, cloudOnlyP = append(cloudOnly, row), append(cloudOnlyP, p.Prefix)
			}
		}
	}
	t.Attributed = spaceOf(all)
	// Each source's space as its cover (overlaps merged) once: the
	// intersections below work on covers, much smaller than the lists.
	covers := make(map[string][]netip.Prefix, len(bySource))
	for src, ps := range bySource {
		covers[src] = prefixset.Coverage(ps)
	}
	for src, ps := range bySource {
		ss := SourceSpace{Source: src, Kind: kinds.Of(src), Space: spaceOf(covers[src])}
		ss.Prefixes = len(ps)
		// Only: the space no other source attests (by any of its
		// prefixes), and the prefixes it alone attests.
		var others []netip.Prefix
		for o, c := range covers {
			if o != src {
				others = append(others, c...)
			}
		}
		v4, v6 := prefixset.Size(prefixset.Intersect(covers[src], others))
		ss.Only = Space{Prefixes: len(onlyBy[src]), IPv4: ss.IPv4 - v4, IPv6: ss.IPv6 - v6}
		t.BySource = append(t.BySource, ss)
	}
	slices.SortFunc(t.BySource, func(a, b SourceSpace) int {
		return cmp.Or(cmp.Compare(b.IPv4, a.IPv4), cmp.Compare(b.IPv6, a.IPv6), cmp.Compare(a.Source, b.Source))
	})
	for _, k := range asn.Kinds {
		if ps, ok := byKind[k]; ok {
			t.ByKind = append(t.ByKind, KindSpace{Kind: k, Space: spaceOf(ps)})
		}
	}
	for n := range len(asn.Kinds) + 1 {
		if ps, ok := byCount[n]; ok {
			t.Agreement = append(t.Agreement, Agreement{Kinds: n, Space: spaceOf(ps)})
		}
	}
	for i, a := range t.BySource {
		for _, b := range t.BySource[i+1:] {
			both := prefixset.Intersect(covers[a.Source], covers[b.Source])
			if len(both) == 0 {
				continue
			}
			v4, v6 := prefixset.Size(both)
			t.Overlaps = append(t.Overlaps, Overlap{A: a.Source, B: b.Source, IPv4: v4, IPv6: v6})
		}
	}
	t.SingleSource = list(single, singleP)
	t.Upstreams = list(upstream, upstreamP)
	t.CloudRanges = list(cloud, cloudP)
	t.CloudOnly = list(cloudOnly, cloudOnlyP)
	for _, a := range tr.ASNs {
		if !a.NameOnly {
			continue
		}
		x := ASN{ASN: a.ASN, Name: a.Name, Sources: []string{}, Filtered: slices.Contains(filtered, a.ASN)}
		for _, e := range a.Evidence {
			if !slices.Contains(x.Sources, e.Source) {
				x.Sources = append(x.Sources, e.Source)
			}
		}
		slices.Sort(x.Sources)
		t.NameOnly = append(t.NameOnly, x)
	}
	counts := map[string]int{}
	for _, d := range in.Dropped {
		if d.Target != tr.Name {
			continue
		}
		counts[d.Reason]++
		t.DropsTotal++
		if len(t.Drops) < MaxRows {
			t.Drops = append(t.Drops, d)
		}
	}
	for reason, n := range counts {
		t.DropCounts = append(t.DropCounts, DropCount{Reason: reason, Count: n})
	}
	slices.SortFunc(t.DropCounts, func(a, b DropCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	largest := slices.Clone(rows)
	slices.SortStableFunc(largest, func(a, b Row) int {
		// IPv4 first, then the shortest prefixes, then by address.
		if a.Prefix.Addr().Is4() != b.Prefix.Addr().Is4() {
			if a.Prefix.Addr().Is4() {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()), asn.ComparePrefix(a.Prefix, b.Prefix))
	})
	for _, fam := range []bool{true, false} {
		n := 0
		for _, row := range largest {
			if row.Prefix.Addr().Is4() == fam && n < 10 {
				t.Largest = append(t.Largest, row)
				n++
			}
		}
	}
	return t
}

func list(rows []Row, ps []netip.Prefix) List {
	l := List{Total: len(rows), Space: spaceOf(ps), Rows: rows[:min(len(rows), MaxRows)]}
	if l.Rows == nil {
		l.Rows = []Row{}
	}
	return l
}
