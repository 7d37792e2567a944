package asn

import (
	"slices"
	"testing"
)

func TestKindOf(t *testing.T) {
	for src, want := range map[string]Kind{
		"table:ris-rrc00": KindTable, "irr:RADB": KindIRR, "irr:127.0.0.1:4343": KindIRR, "rir:apnic": KindRegistration,
		"whois:ripe": KindRegistration, "rpki": KindROA, "ripestat": KindRIPEstat, "rdap": KindNames, "peeringdb": KindNames,
		"file:ipverse": KindASNList, "file:rpsl": KindIRR, "builtin": KindBuiltin, "policy": KindPolicy, "file:mine": KindOther,
		"bmp:192.0.2.1": KindBMP, "feed:192.0.2.2": KindBMP,
	} {
		if got := KindOf(src); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", src, got, want)
		}
	}
}

// TestEmbeddedKinds: every prefix of the embedded snapshot is attested by
// at least one kind of source; the operator-named files have their kinds
// from the provenance, and a table's statement about an upstream attests
// nothing.
func TestEmbeddedKinds(t *testing.T) {
	s, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	k := s.SourceKinds()
	for src, want := range map[string]Kind{"file:cloud-ip-ranges": KindCloudRanges, "file:as-prefix": KindASNList,
		"file:bytedance-ip-feed": KindRangeList, "file:ipverse": KindASNList, "table:ip-location-db-v4": KindTable, "rir:apnic": KindRegistration} {
		if got := k.Of(src); got != want {
			t.Errorf("%s: kind %s, want %s", src, got, want)
		}
	}
	counts := map[int]int{}
	upstreams := 0
	for _, tr := range s.Targets {
		for i := range tr.Prefixes {
			p := &tr.Prefixes[i]
			srcs, kinds := k.Attesting(p)
			if len(kinds) == 0 || len(srcs) < len(kinds) {
				t.Errorf("%s %s: sources %v kinds %v", tr.Name, p.Prefix, srcs, kinds)
			}
			counts[len(kinds)]++
			for _, e := range p.Evidence {
				if IsUpstreamEvidence(e) {
					upstreams++
					if slices.Contains(srcs, e.Source) && !slices.ContainsFunc(p.Evidence, func(x Evidence) bool { return x.Source == e.Source && !IsUpstreamEvidence(x) }) {
						t.Errorf("%s: the upstream statement of %s counts as attesting", p.Prefix, e.Source)
					}
				}
			}
		}
	}
	t.Logf("prefixes by number of kinds attesting them: %v; upstream statements: %d", counts, upstreams)
}
