package whoisdump_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/whoisdump"
)

// Real data in testdata (see PROVENANCE.md):
//   - apnic.db.inetnum.head.gz: the first 3,156 inetnum objects of an APNIC
//     split dump (2023-07), recompressed;
//   - ripe-nonauth.db.aut-num.gz: RIPE's whole ripe-nonauth aut-num split
//     dump (2,109 objects, 2023-11), byte-identical;
//   - ripe-objects.rpsl: real RIPE objects (AS215778's mntner, aut-num and
//     inet6num; an inetnum and its organisation from a whois answer).
const (
	apnicInetnum = "testdata/apnic.db.inetnum.head.gz"
	ripeAutNum   = "testdata/ripe-nonauth.db.aut-num.gz"
	ripeObjects  = "testdata/ripe-objects.rpsl"
)

func newSource(t *testing.T, paths ...string) *whoisdump.Source {
	t.Helper()
	var dumps []whoisdump.Dump
	for _, p := range paths {
		dumps = append(dumps, whoisdump.Dump{Path: p})
	}
	s, err := whoisdump.New(whoisdump.Options{Registry: "test", Dumps: dumps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func seeds(t *asn.Target) []uint32 {
	var out []uint32
	for _, a := range t.ActiveASNs() {
		out = append(out, a.ASN)
	}
	return out
}

// byPrefix groups facts by prefix.
func byPrefix(facts []asn.PrefixFact) map[netip.Prefix][]asn.PrefixFact {
	out := map[netip.Prefix][]asn.PrefixFact{}
	for _, f := range facts {
		out[f.Prefix] = append(out[f.Prefix], f)
	}
	return out
}

func asnSet(facts []asn.ASNFact) []uint32 {
	var out []uint32
	for _, f := range facts {
		if !slices.Contains(out, f.ASN) {
			out = append(out, f.ASN)
		}
	}
	slices.Sort(out)
	return out
}

// TestRealAPNICDumpByName: every object of the real APNIC dump is read;
// inetnums whose netname or descr name the target become their CIDR cover,
// with no origin, the object as evidence and its last-modified as the date.
func TestRealAPNICDumpByName(t *testing.T) {
	s := newSource(t, apnicInetnum)
	tg := &asn.Target{Name: "t", Names: []string{"CSIRO", "HK Cable"}}
	facts, err := s.Resolve(context.Background(), tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := byPrefix(facts.Prefixes)
	// 16 of CSIRO's 18 inetnums name it (CSISDITANNEX's and CSISDITBB's
	// descr spell it out), and 8 HK Cable allocations cover 9 prefixes.
	if len(got) != 16+9 {
		var ps []string
		for p := range got {
			ps = append(ps, p.String())
		}
		t.Fatalf("%d prefixes: %v", len(got), ps)
	}
	f := got[netip.MustParsePrefix("202.8.32.0/24")]
	if len(f) != 1 || f[0].Origin != 0 || f[0].Evidence.Source != "whois:test" ||
		f[0].Evidence.Detail != `registered to "CSIRO": inetnum 202.8.32.0 - 202.8.32.255, netname CSIRO-HO1; tied by name: netname CSIRO-HO1 matches the target's names` {
		t.Errorf("202.8.32.0/24: %+v", f)
	}
	// "203.83.64.0 - 203.83.95.255" is a /19; "203.168.160.0 - 203.168.255.255" is a /19 and a /18.
	for _, p := range []string{"203.83.64.0/19", "203.168.160.0/19", "203.168.192.0/18"} {
		f := got[netip.MustParsePrefix(p)]
		if len(f) != 1 || !strings.Contains(f[0].Evidence.Detail, `descr "HK Cable TV Ltd" matches`) {
			t.Errorf("%s: %+v", p, f)
		}
	}
	if _, ok := got[netip.MustParsePrefix("202.6.4.0/24")]; ok {
		t.Error("CSISDITANNEX tied by name although no name matches")
	}
	if seen := got[netip.MustParsePrefix("61.10.0.0/18")][0].Evidence.Seen; !seen.Equal(time.Date(2022, 6, 9, 4, 33, 28, 0, time.UTC)) { // its last-modified
		t.Errorf("seen %v", seen)
	}
	// The whole file was read: its checksum is in the provenance.
	prov := s.Provenance()
	data, _ := os.ReadFile(apnicInetnum)
	sum := sha256.Sum256(data)
	if len(prov) != 1 || prov[0].SHA256 != hex.EncodeToString(sum[:]) || prov[0].Source != "whois:test" || !strings.Contains(prov[0].Note, "gzip") {
		t.Errorf("provenance %+v", prov)
	}
}

// TestRealOrgDiscovery: the organisation on a seed's aut-num ties the
// holder's other aut-nums (with the chain of evidence), and its exclusive
// maintainer ties them too.
func TestRealOrgDiscovery(t *testing.T) {
	s := newSource(t, ripeAutNum)
	tg := &asn.Target{Name: "rackspace", ASNs: []asn.SeedASN{{ASN: 33070}}}
	found, err := s.Discover(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := asnSet(found); !slices.Equal(got, []uint32{19994, 27357}) {
		t.Fatalf("discovered %v", got)
	}
	var details []string
	for _, f := range found {
		if f.ASN == 27357 {
			details = append(details, f.Evidence.Detail)
			if f.Name != "RACKSPACE-IAD" || f.Evidence.Source != "whois:test" || !f.Evidence.Seen.Equal(time.Date(2018, 9, 4, 15, 30, 38, 0, time.UTC)) {
				t.Errorf("fact %+v", f)
			}
		}
	}
	slices.Sort(details)
	want := []string{
		"aut-num AS27357 maintained by RSPC-MNT (mnt-by of AS33070's aut-num; it maintains 3 object(s) tied to the target otherwise and 0 not, none of another organisation)",
		"aut-num AS27357 org: ORG-RA33-RIPE, the org of AS33070's aut-num",
	}
	if !slices.Equal(details, want) {
		t.Errorf("AS27357 evidence:\n%s\nwant\n%s", strings.Join(details, "\n"), strings.Join(want, "\n"))
	}
}

// TestRealSharedMaintainersNotFollowed: Tencent's aut-nums in the real
// RIPE-NONAUTH dump are maintained by a consultancy's maintainer
// (hk-larus-1-mnt, also on 26 other holders' aut-nums, NetEase's among
// them) and by RIPE-NCC-LOCKED-MNT (199 aut-nums): neither pulls anything
// in, and the evidence says why.
func TestRealSharedMaintainersNotFollowed(t *testing.T) {
	s := newSource(t, ripeAutNum)
	tg, _ := asn.BuiltinTarget("tencent")
	found, err := s.Discover(context.Background(), &tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if !slices.Contains(seeds(&tg), f.ASN) {
			t.Errorf("AS%d attributed to tencent: %s", f.ASN, f.Evidence.Detail)
		}
	}
	if len(found) != 2 { // AS45090 and AS132203, by their as-names
		t.Errorf("found %+v", found)
	}
	facts, err := s.Resolve(context.Background(), &tg, seeds(&tg))
	if err != nil {
		t.Fatal(err)
	}
	desc := map[uint32]string{}
	for _, f := range facts.ASNs {
		desc[f.ASN] = f.Evidence.Detail
	}
	if d := desc[45090]; d != "aut-num AS45090 as-name CNNIC-TENCENT-NET-AP, mnt-by HK-LARUS-1-MNT (not followed: it maintains 1 object(s) tied to the target otherwise and 26 not, e.g. aut-num AS133201 COMING-AS)" {
		t.Errorf("AS45090: %s", d)
	}
	if d := desc[132203]; !strings.HasPrefix(d, "aut-num AS132203 as-name TENCENT-NET-AP-CN, mnt-by RIPE-NCC-LOCKED-MNT (not followed: it also maintains aut-num AS") {
		t.Errorf("AS132203: %s", d)
	}
	if len(facts.Prefixes) != 0 {
		t.Errorf("prefixes from an aut-num dump: %v", facts.Prefixes)
	}
}

// TestRealMaintainerRuleOnAddressObjects: AS215778's own maintainer ties
// nothing wrong, RIPE's end-user maintainer (also on AS215778's aut-num)
// maintains another organisation's inetnum and is not followed; an
// organisation found by its org-name ties its inetnum, and its maintainer
// is followed.
func TestRealMaintainerRuleOnAddressObjects(t *testing.T) {
	s := newSource(t, ripeObjects)
	tg := &asn.Target{Name: "likhner", ASNs: []asn.SeedASN{{ASN: 215778}}}
	facts, err := s.Resolve(context.Background(), tg, seeds(tg))
	if err != nil {
		t.Fatal(err)
	}
	if len(facts.Prefixes) != 1 || facts.Prefixes[0].Prefix != netip.MustParsePrefix("2a11:f2c0:ffcb::/48") ||
		facts.Prefixes[0].Evidence.Detail != "registered to ORG-AL998-RIPE: inet6num 2a11:f2c0:ffcb::/48, netname LIKHNER-NET; tied by org: ORG-AL998-RIPE is the org of AS215778's aut-num" ||
		!facts.Prefixes[0].Evidence.Seen.Equal(time.Date(2024, 8, 9, 19, 4, 13, 0, time.UTC)) {
		t.Fatalf("prefixes %+v", facts.Prefixes)
	}
	if len(facts.ASNs) != 1 || facts.ASNs[0].Evidence.Detail != "aut-num AS215778 as-name LIKHNER-AS, org ORG-AL998-RIPE, "+
		"mnt-by RIPE-NCC-END-MNT (not followed: it also maintains inetnum 91.202.128.0 - 91.202.131.255, netname KUNET of organisation ORG-TSUO1-RIPE), "+
		"mnt-by LIKHNER-MNT (it maintains 2 object(s) tied to the target otherwise and 0 not, none of another organisation)" {
		t.Errorf("ASN facts %+v", facts.ASNs)
	}

	kyiv := &asn.Target{Name: "kyiv", Names: []string{"Taras Shevchenko University"}}
	facts, err = s.Resolve(context.Background(), kyiv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(facts.Prefixes) != 1 || facts.Prefixes[0].Prefix != netip.MustParsePrefix("91.202.128.0/22") ||
		!strings.Contains(facts.Prefixes[0].Evidence.Detail, `tied by org: ORG-TSUO1-RIPE is an organisation whose org-name "Kyiv National Taras Shevchenko University" matches the target's names`) {
		t.Errorf("kyiv: %+v", facts.Prefixes)
	}
}

// constructed writes RPSL written for a test (not registry data) next to
// the real dumps: it links real objects to a test target.
func constructed(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "constructed.rpsl")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMaintainerRuleUntied: on the real APNIC dump, a maintainer is
// followed only when the objects it alone would tie are no more than those
// tied otherwise. MAINT-CHINAGBN-AP (an upstream's maintainer, on 422
// assignments to unrelated holders) ties nothing beyond the name matches;
// MAINT-AP-NOMURA (mnt-lower of two Nomura allocations, one named
// "Nomura International") ties the other one. The aut-nums that list the
// maintainers are constructed (documentation ASNs); the inetnums are real.
func TestMaintainerRuleUntied(t *testing.T) {
	link := constructed(t, "aut-num: AS64500\nas-name: TEST-GBN\nmnt-by: MAINT-CHINAGBN-AP\nsource: TEST\n\n"+
		"aut-num: AS64501\nas-name: TEST-NOMURA\nmnt-by: MAINT-AP-NOMURA\nsource: TEST\n")
	s := newSource(t, link, apnicInetnum)

	gbn := &asn.Target{Name: "gbn", ASNs: []asn.SeedASN{{ASN: 64500}}, Names: []string{"Golden Bridge"}}
	facts, err := s.Resolve(context.Background(), gbn, seeds(gbn))
	if err != nil {
		t.Fatal(err)
	}
	got := byPrefix(facts.Prefixes)
	if len(got) != 9 || got[netip.MustParsePrefix("203.93.7.0/26")] == nil || got[netip.MustParsePrefix("203.93.7.128/26")] != nil {
		t.Errorf("gbn prefixes %v", got)
	}
	for _, f := range facts.Prefixes {
		if !strings.Contains(f.Evidence.Detail, "tied by name: descr") {
			t.Errorf("%s: %s", f.Prefix, f.Evidence.Detail)
		}
	}
	if len(facts.ASNs) != 1 || !strings.Contains(facts.ASNs[0].Evidence.Detail, "mnt-by MAINT-CHINAGBN-AP (not followed: it maintains 9 object(s) tied to the target otherwise and 414 not, e.g. inetnum 203.93.7.128 - 203.93.7.191, netname IEDNET-CN)") {
		t.Errorf("gbn: %+v", facts.ASNs)
	}

	nomura := &asn.Target{Name: "nomura", ASNs: []asn.SeedASN{{ASN: 64501}}, Names: []string{"Nomura International"}}
	facts, err = s.Resolve(context.Background(), nomura, seeds(nomura))
	if err != nil {
		t.Fatal(err)
	}
	got = byPrefix(facts.Prefixes)
	var ps []string
	for p := range got {
		ps = append(ps, p.String())
	}
	slices.Sort(ps)
	if !slices.Equal(ps, []string{"202.40.12.0/23", "202.40.14.0/24", "202.40.8.0/22", "202.7.128.0/20"}) {
		t.Fatalf("nomura prefixes %v", ps)
	}
	if d := got[netip.MustParsePrefix("202.7.128.0/20")][0].Evidence.Detail; d != "registered without org: inetnum 202.7.128.0 - 202.7.143.255, netname NOMURA-HK; "+
		"tied by maintainer: MAINT-AP-NOMURA is mnt-by of AS64501's aut-num (it maintains 2 object(s) tied to the target otherwise and 1 not, none of another organisation)" {
		t.Errorf("NOMURA-HK: %s", d)
	}
}

// TestMaintainerRuleOrganisations: an object that names the target counts
// as the target's for its maintainers even when its org: is another
// (an LIR's assignment); one that neither names the target nor carries a
// target organisation disqualifies them. On the real CSIRO allocations,
// whose mnt-lower is MAINT-AU-CSIRO: CSIRO's organisation unknown, the
// allocations that do not say "CSIRO" stop the maintainer; with the
// organisation known (on the seed's aut-num, constructed), all 18 are tied
// by org and the maintainer is followed.
func TestMaintainerRuleOrganisations(t *testing.T) {
	tg := &asn.Target{Name: "csiro", ASNs: []asn.SeedASN{{ASN: 64502}}, Names: []string{"CSIRO"}}
	s := newSource(t, constructed(t, "aut-num: AS64502\nas-name: TEST-CSIRO\nmnt-by: MAINT-AU-CSIRO\nsource: TEST\n"), apnicInetnum)
	facts, err := s.Resolve(context.Background(), tg, seeds(tg))
	if err != nil {
		t.Fatal(err)
	}
	if len(byPrefix(facts.Prefixes)) != 16 || len(facts.ASNs) != 1 ||
		!strings.Contains(facts.ASNs[0].Evidence.Detail, "mnt-by MAINT-AU-CSIRO (not followed: it also maintains inetnum 202.6.4.0 - 202.6.4.255, netname CSISDITANNEX of organisation ORG-CSAI1-AP)") {
		t.Errorf("%d prefixes, %+v", len(byPrefix(facts.Prefixes)), facts.ASNs)
	}

	s = newSource(t, constructed(t, "aut-num: AS64502\nas-name: TEST-CSIRO\norg: ORG-CSAI1-AP\nmnt-by: MAINT-AU-CSIRO\nsource: TEST\n"), apnicInetnum)
	facts, err = s.Resolve(context.Background(), tg, seeds(tg))
	if err != nil {
		t.Fatal(err)
	}
	got := byPrefix(facts.Prefixes)
	if f := got[netip.MustParsePrefix("202.6.4.0/24")]; len(got) != 18 || len(f) != 1 ||
		f[0].Evidence.Detail != "registered to ORG-CSAI1-AP: inetnum 202.6.4.0 - 202.6.4.255, netname CSISDITANNEX; tied by org: ORG-CSAI1-AP is the org of AS64502's aut-num" {
		t.Errorf("%d prefixes; 202.6.4.0/24: %+v", len(got), f)
	}
	if len(facts.ASNs) != 1 || !strings.Contains(facts.ASNs[0].Evidence.Detail, "mnt-by MAINT-AU-CSIRO (it maintains 19 object(s) tied to the target otherwise and 0 not, none of another organisation)") {
		t.Errorf("%+v", facts.ASNs)
	}
}
