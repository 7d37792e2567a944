package asn

import (
	"slices"
	"strings"
)

// Kind is a kind of source: sources of one kind observe the same thing the
// same way (two per-ASN lists copied from the same BGP view are not two
// independent witnesses), so the confidence in a prefix is the number of
// kinds that attest it, not the number of sources.
type Kind string

// The kinds of source. Each source type has one (see KindOf); a files
// source has the kind of its format unless configured otherwise.
const (
	// KindTable: a routing table (MRT RIB or updates, prefix2as, an
	// IP-range-to-ASN table, bgp.tools): what routers announced.
	KindTable Kind = "routing-table"
	// KindIRR: an IRR route/route6 object (whois server or RPSL file).
	KindIRR Kind = "irr-route"
	// KindRegistration: an RIR registration (delegated statistics, an
	// inetnum/inet6num of a whois dump).
	KindRegistration Kind = "registration"
	// KindROA: an RPKI ROA.
	KindROA Kind = "rpki-roa"
	// KindASNList: a per-ASN list of announced prefixes (ipverse, a CIDR
	// list of one ASN).
	KindASNList Kind = "asn-list"
	// KindRIPEstat: RIPEstat's announced prefixes.
	KindRIPEstat Kind = "ripestat"
	// KindRangeList: a company's list of ranges, without origins.
	KindRangeList Kind = "range-list"
	// KindCloudRanges: a cloud or hosting provider's range list: the
	// ranges host third parties.
	KindCloudRanges Kind = "cloud-ranges"
	// KindNames: holder names (RDAP, PeeringDB, AS name lists): these
	// attribute ASNs, not prefixes.
	KindNames Kind = "names"
	// KindBMP: routes seen live by the operator's own routers (BMP, or a
	// BGP feed neighbor: "bmp:<router>", "feed:<neighbor>").
	KindBMP Kind = "bmp"
	// KindBuiltin: the built-in target definitions.
	KindBuiltin Kind = "builtin"
	// KindPolicy: notes the policy added (an exception cut a prefix).
	KindPolicy Kind = "policy"
	// KindOther: a source whose kind is not known (a snapshot written
	// before kinds were recorded).
	KindOther Kind = "other"
)

// Kinds lists every kind, in the order reports show them.
var Kinds = []Kind{KindTable, KindIRR, KindRegistration, KindROA, KindASNList, KindRIPEstat,
	KindRangeList, KindCloudRanges, KindNames, KindBMP, KindBuiltin, KindPolicy, KindOther}

// FileKinds are the kinds a files source may be given in the config.
var FileKinds = []Kind{KindASNList, KindRangeList, KindCloudRanges, KindIRR, KindRegistration, KindTable, KindROA, KindNames}

// ValidKind reports whether k is one of Kinds.
func ValidKind(k string) bool { return slices.Contains(Kinds, Kind(k)) }

// attests reports whether evidence of this kind says a prefix is the
// target's (builtin and policy notes do not).
func (k Kind) attests() bool { return k != KindBuiltin && k != KindPolicy && k != KindNames }

// KindOf is the kind of a source by its name, for the source types whose
// names say it ("table:ris", "irr:RADB", "rir:apnic", "whois:ripe",
// "rpki", "ripestat", "rdap", "peeringdb", "bmp:…", "builtin", "policy").
// Files sources are named by the operator: their kind is recorded in the
// snapshot's provenance (see SourceKinds); by name only the default names
// are known ("file:ipverse", "file:rpsl", "file:asnames").
func KindOf(source string) Kind {
	typ, _, _ := strings.Cut(source, ":")
	switch typ {
	case "table":
		return KindTable
	case "irr":
		return KindIRR
	case "rir", "whois":
		return KindRegistration
	case "rpki":
		return KindROA
	case "ripestat":
		return KindRIPEstat
	case "rdap", "peeringdb":
		return KindNames
	case "bmp", "feed":
		return KindBMP
	case "builtin":
		return KindBuiltin
	case "policy":
		return KindPolicy
	}
	switch source {
	case "file:ipverse":
		return KindASNList
	case "file:rpsl":
		return KindIRR
	case "file:asnames", "file:potaroo":
		return KindNames
	}
	return KindOther
}

// SourceKinds maps source names to their kinds: the kinds recorded in a
// snapshot's provenance, and KindOf for the rest.
type SourceKinds map[string]Kind

// SourceKinds returns the kinds of the snapshot's sources.
func (s *Snapshot) SourceKinds() SourceKinds {
	m := SourceKinds{}
	for _, in := range s.Provenance {
		if in.Kind != "" && ValidKind(in.Kind) {
			m[in.Source] = Kind(in.Kind)
		}
	}
	return m
}

// Of returns the kind of a source.
func (m SourceKinds) Of(source string) Kind {
	if k, ok := m[source]; ok {
		return k
	}
	return KindOf(source)
}

// Attests reports whether e says that its prefix is the target's: not an
// upstream's route (which says who else announces it), not a note of the
// policy or the built-in definitions.
func (m SourceKinds) Attests(e Evidence) bool {
	return !IsUpstreamEvidence(e) && m.Of(e.Source).attests()
}

// Attesting returns the sources and the kinds that attest p, each sorted
// and without duplicates (see Attests).
func (m SourceKinds) Attesting(p *Prefix) (sources []string, kinds []Kind) {
	for _, e := range p.Evidence {
		if !m.Attests(e) {
			continue
		}
		if !slices.Contains(sources, e.Source) {
			sources = append(sources, e.Source)
		}
		if k := m.Of(e.Source); !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(sources)
	slices.Sort(kinds)
	return sources, kinds
}

// upstreamDetail starts the detail of the evidence recorded for an
// upstream's route (see upstreamFacts).
const upstreamDetail = ", not a target ASN (upstream): "

// IsUpstreamEvidence reports whether e is a routing table's statement that
// a non-target AS originates the prefix or routes inside it.
func IsUpstreamEvidence(e Evidence) bool {
	return strings.HasPrefix(e.Detail, "originated by AS") && strings.Contains(e.Detail, upstreamDetail)
}
