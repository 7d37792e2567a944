package whoisdump

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/rpsl"
)

// indexText builds an index from RPSL text written for the test (the rules,
// not registry data, are under test here; real dumps are in the other
// tests).
func indexText(t *testing.T, text string) *index {
	t.Helper()
	x := newIndex()
	err := rpsl.Parse("test", strings.NewReader(text), func(o *rpsl.Object) error { return x.add(o, time.Time{}) })
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestOrganisationsAndMaintainers: the ways an organisation or a
// maintainer becomes the target's, and the pools that are not followed.
func TestOrganisationsAndMaintainers(t *testing.T) {
	var b strings.Builder
	b.WriteString("organisation: ORG-EX1-TEST\norg-name: Example Corp\norg-type: OTHER\nmnt-by: MAINT-EX-ORG\n\n")
	b.WriteString("mntner: MAINT-EXAMPLE\norg: ORG-EX1-TEST\n\n")
	b.WriteString("mntner: MAINT-EXAMPLECORP-AP\n\n")
	b.WriteString("organisation: ORG-NIR1-TEST\norg-name: Example Corp Registry\norg-type: NIR\n\n")
	b.WriteString("aut-num: AS64500\nas-name: SEED\norg: ORG-NIR1-TEST\nmnt-by: MAINT-SEED\n\n")
	b.WriteString("aut-num: AS64501\nas-name: SEED2\norg: ORG-POOL1-TEST\n\n")
	for i := range DefaultMaxOrgASNs {
		fmt.Fprintf(&b, "aut-num: AS%d\nas-name: MEMBER%d\norg: ORG-POOL1-TEST\n\n", 65000+i, i)
	}
	x := indexText(t, b.String())
	tt := x.ties(&asn.Target{Name: "t", Names: []string{"Example Corp"}}, []uint32{64500, 64501}, DefaultMaxOrgASNs, DefaultMaxUntied)
	if l, ok := tt.orgs["ORG-EX1-TEST"]; !ok || l.why != `an organisation whose org-name "Example Corp" matches the target's names` {
		t.Errorf("ORG-EX1-TEST: %+v", tt.orgs)
	}
	if _, ok := tt.orgs["ORG-NIR1-TEST"]; ok || tt.skipped["ORG-NIR1-TEST"] != "org-type NIR" {
		t.Errorf("NIR organisation followed: %+v %+v", tt.orgs, tt.skipped)
	}
	if _, ok := tt.orgs["ORG-POOL1-TEST"]; ok || tt.skipped["ORG-POOL1-TEST"] != "named by 51 aut-nums: a pool of holders" {
		t.Errorf("pool followed: %+v", tt.skipped)
	}
	for h, why := range map[string]string{
		"MAINT-SEED":           "mnt-by of AS64500's aut-num",
		"MAINT-EX-ORG":         "mnt-by of organisation ORG-EX1-TEST",
		"MAINT-EXAMPLE":        "mntner with org: ORG-EX1-TEST",
		"MAINT-EXAMPLECORP-AP": "", // "EXAMPLECORP" is not "Example Corp"
	} {
		m := tt.mnts[h]
		if (m == nil) != (why == "") || m != nil && m.why != why {
			t.Errorf("%s: %+v, want %q", h, m, why)
		}
	}
	// MAINT-SEED maintains only the seed's aut-num (known, so the
	// target's, whatever its organisation).
	if m := tt.mnts["MAINT-SEED"]; !m.follows(tt.max) || m.tied != 1 {
		t.Errorf("MAINT-SEED: %+v", m)
	}
	if got := x.discover(tt, func(n *autNum, d string) asn.ASNFact {
		return asn.ASNFact{ASN: n.ASN, Evidence: asn.Evidence{Detail: d}}
	}); len(got) != 0 {
		t.Errorf("discovered from pools: %+v", got)
	}
}
