package explain_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/explain"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

func query(t *testing.T, s *asn.Snapshot, pol policy.Policy, q string) (*explain.Result, *policy.Intent) {
	t.Helper()
	in := pol.Apply(s)
	r, err := explain.New(s, in).Query(q)
	if err != nil {
		t.Fatal(err)
	}
	return r, in
}

func mustPolicy(t *testing.T, pc policy.PolicyConfig) policy.Policy {
	t.Helper()
	p, err := pc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Space registered to CSIRO (real APNIC inetnum) and announced in the real
// 2002 RIS table by AS7476, not CSIRO's: blocked, the registration attests
// it, the table says who announces it, and the two are shown disagreeing;
// AS7476 is no blocked origin.
func TestRegisteredSpaceAnnouncedByUpstream(t *testing.T) {
	s := loadFixture(t)
	r, in := query(t, s, policy.DefaultPolicy(), "202.12.120.7")
	if !r.Blocked || r.Query != "202.12.120.7" || len(r.Matches) != 1 {
		t.Fatalf("result %+v", r)
	}
	m := r.Matches[0]
	if m.Target != "csiro" || m.Prefix != netip.MustParsePrefix("202.12.120.0/24") || m.Relation != "covers" ||
		len(m.Origins) != 0 || !slices.Equal(m.Upstreams, []uint32{7476}) {
		t.Fatalf("match %+v", m)
	}
	if !slices.Equal(m.Kinds, []asn.Kind{asn.KindRegistration}) || !slices.Equal(m.Sources, []string{"whois:apnic"}) {
		t.Errorf("kinds %v sources %v: the table's word about AS7476 attests nothing", m.Kinds, m.Sources)
	}
	roles := map[string]string{}
	for _, st := range m.Evidence {
		roles[st.Source] = st.Role
	}
	if roles["whois:apnic"] != explain.RoleAttests || roles["table:rrc00"] != explain.RoleUpstream {
		t.Errorf("roles %v", roles)
	}
	if !slices.ContainsFunc(m.Evidence, func(st explain.Statement) bool {
		return st.Source == "whois:apnic" && strings.Contains(st.Detail, "netname CSIRO")
	}) {
		t.Errorf("the registration's statement is missing: %+v", m.Evidence)
	}
	if len(m.Disagreements) != 1 || !strings.Contains(m.Disagreements[0], "routing tables (table:rrc00) show AS7476, not csiro's") ||
		!strings.Contains(m.Disagreements[0], "whois:apnic attribute it to csiro (with no origin)") {
		t.Errorf("disagreements %q", m.Disagreements)
	}
	// The list entries are the ones the filters hold.
	var rf string
	for _, e := range in.RouteFilterEntries("csiro", prefixset.IPv4) {
		if e.Matches(m.Prefix) {
			rf = e.String()
		}
	}
	if rf == "" || m.Entries.RouteFilter != rf || !strings.HasSuffix(rf, " le 32") {
		t.Errorf("route filter entry %q, want %q", m.Entries.RouteFilter, rf)
	}
	if c := netip.MustParsePrefix(m.Entries.Cover); !c.Contains(netip.MustParseAddr("202.12.120.7")) || !slices.Contains(in.Coverage("csiro", prefixset.IPv4), c) {
		t.Errorf("cover entry %q", m.Entries.Cover)
	}

	// The upstream is no target's origin.
	r, _ = query(t, s, policy.DefaultPolicy(), "AS7476")
	if r.Blocked || len(r.ASNs) != 0 {
		t.Errorf("AS7476: %+v", r)
	}
	r, _ = query(t, s, policy.DefaultPolicy(), "as9908")
	if !r.Blocked || len(r.ASNs) != 1 || !r.ASNs[0].Filtered || r.ASNs[0].Target != "hkcable" || r.ASNs[0].Prefixes != 42 {
		t.Errorf("AS9908: %+v", r.ASNs)
	}
}

// An address inside nested prefixes of a target: every containing prefix,
// most specific first, each with the sources that attest it (the table
// and the registration agree on HK Cable's 61.10.0.0/18).
func TestNestedMatchesAndAgreement(t *testing.T) {
	s := loadFixture(t)
	r, _ := query(t, s, policy.DefaultPolicy(), "61.10.0.1")
	var got []string
	for _, m := range r.Matches {
		got = append(got, m.Prefix.String()+" "+strings.Join(m.Sources, "+"))
	}
	want := []string{"61.10.0.0/19 table:rrc00", "61.10.0.0/18 whois:apnic", "61.10.0.0/17 table:rrc00"}
	if !slices.Equal(got, want) {
		t.Errorf("matches %v\nwant %v", got, want)
	}
	// A prefix query: partly blocked when target prefixes lie inside.
	r, _ = query(t, s, policy.DefaultPolicy(), "61.10.0.0/12")
	if r.Blocked || !r.PartlyBlocked || r.InsideTotal == 0 || len(r.Inside) != r.InsideTotal || r.Inside[0].Relation != "inside" {
		t.Errorf("61.10.0.0/12: blocked %v partly %v inside %d", r.Blocked, r.PartlyBlocked, r.InsideTotal)
	}
	r, _ = query(t, s, policy.DefaultPolicy(), "8.8.8.8")
	if r.Blocked || r.PartlyBlocked || len(r.Matches) != 0 || len(r.Dropped) != 0 {
		t.Errorf("8.8.8.8: %+v", r)
	}
}

// What the policy did: with min_sources 2 the registration alone is not
// enough; the drop is shown with its reason and the sources' statements.
func TestPolicyDropExplained(t *testing.T) {
	s := loadFixture(t)
	r, _ := query(t, s, mustPolicy(t, policy.PolicyConfig{MinSources: 2}), "202.12.120.7")
	if r.Blocked || len(r.Matches) != 0 || len(r.Dropped) != 1 {
		t.Fatalf("%+v", r)
	}
	d := r.Dropped[0]
	if d.Target != "csiro" || d.Prefix != "202.12.120.0/24" || d.Reason != policy.ReasonTooFewSources ||
		!slices.Equal(d.Upstreams, []uint32{7476}) || len(d.Evidence) != 2 {
		t.Errorf("drop %+v", d)
	}
	// Protected space: dropped as protected.
	r, _ = query(t, s, mustPolicy(t, policy.PolicyConfig{Protect: []string{"61.10.0.0/20"}}), "61.10.0.1")
	reasons := map[string]string{}
	for _, d := range r.Dropped {
		reasons[d.Prefix] = d.Reason
	}
	for _, p := range []string{"61.10.0.0/19", "61.10.0.0/18", "61.10.0.0/17"} {
		if reasons[p] != policy.ReasonProtected {
			t.Errorf("%s: %q, want protected (%v)", p, reasons[p], reasons)
		}
	}
	if r.Blocked {
		t.Errorf("protected address blocked: %+v", r.Matches)
	}
	// An excluded source is shown as not counted.
	r, _ = query(t, s, mustPolicy(t, policy.PolicyConfig{ExcludeSources: []string{"table:rrc00"}}), "61.10.0.1")
	if len(r.Matches) != 1 || r.Matches[0].Prefix.String() != "61.10.0.0/18" {
		t.Fatalf("with the table excluded: %+v", r.Matches)
	}
	if len(r.Dropped) != 2 || r.Dropped[0].Reason != policy.ReasonExcludedSource {
		t.Errorf("drops %+v", r.Dropped)
	}
	// Told the policy, the dropped prefixes' statements say which source
	// did not count.
	pol := mustPolicy(t, policy.PolicyConfig{ExcludeSources: []string{"table:rrc00"}})
	r, err := explain.New(s, pol.Apply(s)).WithPolicy(pol).Query("61.10.0.1")
	if err != nil || len(r.Dropped) != 2 || len(r.Dropped[0].Evidence) == 0 {
		t.Fatalf("%+v %v", r, err)
	}
	for _, d := range r.Dropped {
		for _, st := range d.Evidence {
			if st.Source == "table:rrc00" && st.Role != explain.RoleExcluded {
				t.Errorf("%s: %s is %q, want excluded", d.Prefix, st.Source, st.Role)
			}
		}
	}
	if st := r.Matches[0].Evidence; len(st) == 0 || st[0].Role != explain.RoleAttests {
		t.Errorf("kept match statements %+v", st)
	}
}

// The JSON form has the documented shape.
func TestJSONShape(t *testing.T) {
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := query(t, asn.Select(s, asn.Builtin()), policy.DefaultPolicy(), "71.18.0.1")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Query   string `json:"query"`
		Blocked *bool  `json:"blocked"`
		Matches []struct {
			Target   string            `json:"target"`
			Prefix   string            `json:"prefix"`
			Origins  []uint32          `json:"origins"`
			Evidence []json.RawMessage `json:"evidence"`
		} `json:"matches"`
		Dropped []json.RawMessage `json:"dropped"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Query != "71.18.0.1" || doc.Blocked == nil || !*doc.Blocked || doc.Dropped == nil || len(doc.Matches) == 0 {
		t.Fatalf("%s", b)
	}
	found := false
	for _, m := range doc.Matches {
		if m.Target == "bytedance" && m.Prefix == "71.18.0.0/21" && slices.Equal(m.Origins, []uint32{396986}) && len(m.Evidence) > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no bytedance 71.18.0.0/21 match: %s", b)
	}
}

// On the embedded snapshot: Tencent's 162.14.0.0/16 is attested by per-ASN
// lists and the cloud-range list while the ip-location-db table shows
// AS139341 announcing routes inside it.
func TestEmbeddedDisagreement(t *testing.T) {
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := query(t, asn.Select(s, asn.Builtin()), policy.DefaultPolicy(), "162.14.40.7")
	i := slices.IndexFunc(r.Matches, func(m explain.Match) bool { return m.Prefix.String() == "162.14.0.0/16" })
	if i < 0 {
		t.Fatalf("no match 162.14.0.0/16: %+v", r.Matches)
	}
	m := r.Matches[i]
	if m.Target != "tencent" || !slices.Equal(m.Upstreams, []uint32{139341}) || !slices.Contains(m.Kinds, asn.KindCloudRanges) ||
		!slices.Contains(m.Kinds, asn.KindASNList) || len(m.Disagreements) != 1 || !strings.Contains(m.Disagreements[0], "AS139341, not tencent's") {
		t.Errorf("match %+v", m)
	}
}

func TestParse(t *testing.T) {
	for q, want := range map[string]string{"71.18.0.1": "71.18.0.1/32", " 2001:db8::1 ": "2001:db8::1/128", "71.18.3.0/21": "71.18.0.0/21",
		"::ffff:71.18.0.1": "71.18.0.1/32", "AS396986": "AS396986", "as1": "AS1", "396986": "AS396986"} {
		p, n, err := explain.Parse(q)
		got := p.String()
		if n != 0 {
			got = "AS" + itoa(n)
		}
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %s, %v; want %s", q, got, err, want)
		}
	}
	for _, q := range []string{"", "bytedance", "AS", "300.1.1.1", "AS0", "AS4294967296"} {
		if _, _, err := explain.Parse(q); err == nil {
			t.Errorf("Parse(%q): no error", q)
		}
	}
}

func itoa(n uint32) string {
	b, _ := json.Marshal(n)
	return string(b)
}
