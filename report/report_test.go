package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/report"
)

// The real-data fixture of package explain: HK Cable TV's and CSIRO's
// registrations in APNIC's whois dump against the 2002 RIS table.
const fixture = "../explain/testdata/registered-2002.json"

func load(t *testing.T) *asn.Snapshot {
	t.Helper()
	s, err := asn.ReadSnapshotFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func target(t *testing.T, r *report.Report, name string) report.Target {
	t.Helper()
	for _, x := range r.Targets {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no target %s", name)
	return report.Target{}
}

// addrs counts IPv4 addresses one by one (the fixture's space is small).
func addrs(ps []netip.Prefix) map[uint32]bool {
	m := map[uint32]bool{}
	for _, p := range ps {
		a := p.Addr().As4()
		base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		for i := range uint32(1) << (32 - p.Bits()) {
			m[base+i] = true
		}
	}
	return m
}

func prefixesBy(tr *asn.TargetResult, source string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range tr.Prefixes {
		if slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source == source && !asn.IsUpstreamEvidence(e) }) {
			out = append(out, p.Prefix)
		}
	}
	return out
}

// Space and agreement against counting addresses one by one.
func TestSpaceByCounting(t *testing.T) {
	s := load(t)
	r := report.Build(s, nil)
	tr := s.Target("hkcable")
	hk := target(t, r, "hkcable")
	var all []netip.Prefix
	for _, p := range tr.Prefixes {
		all = append(all, p.Prefix)
	}
	if got, want := hk.Attributed.IPv4, uint64(len(addrs(all))); got != want || got == 0 {
		t.Errorf("attributed %d, counted %d", got, want)
	}
	whois, table := addrs(prefixesBy(tr, "whois:apnic")), addrs(prefixesBy(tr, "table:rrc00"))
	both, onlyWhois := 0, 0
	for a := range whois {
		if table[a] {
			both++
		} else {
			onlyWhois++
		}
	}
	by := map[string]report.SourceSpace{}
	for _, x := range hk.BySource {
		by[x.Source] = x
	}
	if by["whois:apnic"].IPv4 != uint64(len(whois)) || by["table:rrc00"].IPv4 != uint64(len(table)) || by["whois:apnic"].Kind != asn.KindRegistration {
		t.Errorf("by source %+v; counted whois %d table %d", hk.BySource, len(whois), len(table))
	}
	if by["whois:apnic"].Only.IPv4 != uint64(onlyWhois) {
		t.Errorf("only whois %d, counted %d", by["whois:apnic"].Only.IPv4, onlyWhois)
	}
	if len(hk.Overlaps) != 1 || hk.Overlaps[0].IPv4 != uint64(both) || both == 0 {
		t.Errorf("overlaps %+v, counted %d in both", hk.Overlaps, both)
	}
	t.Logf("hkcable: registered %d addresses, announced %d, both %d", len(whois), len(table), both)
}

// CSIRO's registered space announced by other ASes is listed with the
// upstreams; every prefix with upstreams and nothing else.
func TestUpstreamsAndSingleSource(t *testing.T) {
	s := load(t)
	r := report.Build(s, nil)
	cs := target(t, r, "csiro")
	want := 0
	for _, p := range s.Target("csiro").Prefixes {
		if len(p.Upstreams) > 0 {
			want++
		}
	}
	if cs.Upstreams.Total != want || want == 0 {
		t.Fatalf("upstreams %d, want %d", cs.Upstreams.Total, want)
	}
	i := slices.IndexFunc(cs.Upstreams.Rows, func(x report.Row) bool { return x.Prefix.String() == "202.12.120.0/24" })
	if i < 0 || !slices.Equal(cs.Upstreams.Rows[i].Upstreams, []uint32{7476}) || !slices.Equal(cs.Upstreams.Rows[i].Sources, []string{"whois:apnic"}) {
		t.Errorf("upstream rows %+v", cs.Upstreams.Rows)
	}
	// Every CSIRO prefix rests on the registration alone.
	if cs.SingleSource.Total != len(s.Target("csiro").Prefixes) || len(cs.Agreement) != 1 || cs.Agreement[0].Kinds != 1 {
		t.Errorf("single source %d of %d; agreement %+v", cs.SingleSource.Total, len(s.Target("csiro").Prefixes), cs.Agreement)
	}
	// Policy drops are reported per target.
	pol, err := policy.PolicyConfig{MinSources: 2}.Build()
	if err != nil {
		t.Fatal(err)
	}
	r = report.Build(s, pol.Apply(s))
	cs = target(t, r, "csiro")
	if cs.DropsTotal != len(s.Target("csiro").Prefixes) || cs.Blocked.Prefixes != 0 || cs.DropCounts[0].Reason != policy.ReasonTooFewSources {
		t.Errorf("drops %d %+v, blocked %+v", cs.DropsTotal, cs.DropCounts, cs.Blocked)
	}
	if len(cs.Drops) != min(cs.DropsTotal, report.MaxRows) || cs.Upstreams.Rows[0].Blocked {
		t.Errorf("drops listed %d of %d", len(cs.Drops), cs.DropsTotal)
	}
}

// On the embedded snapshot: Tencent's cloud-range list, what it alone
// attests (the prefixes excluding it would drop), and ByteDance's
// name-only ASNs.
func TestEmbedded(t *testing.T) {
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(s, nil)
	tc := target(t, r, "tencent")
	cloud, alone := 0, 0
	for _, p := range s.Target("tencent").Prefixes {
		if slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source == "file:cloud-ip-ranges" }) {
			cloud++
			if !slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source != "file:cloud-ip-ranges" && !asn.IsUpstreamEvidence(e) }) {
				alone++
			}
		}
	}
	if tc.CloudRanges.Total != cloud || tc.CloudOnly.Total != alone || alone == 0 {
		t.Errorf("cloud ranges %d (want %d), alone %d (want %d)", tc.CloudRanges.Total, cloud, tc.CloudOnly.Total, alone)
	}
	pol, err := policy.PolicyConfig{ExcludeSources: []string{"cloud-ranges"}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	r2 := report.Build(s, pol.Apply(s))
	if got := target(t, r2, "tencent").DropsTotal; got != alone {
		t.Errorf("excluding the cloud list drops %d, the report said %d rest on it alone", got, alone)
	}
	bd := target(t, r, "bytedance")
	var nameOnly []uint32
	for _, a := range s.Target("bytedance").ASNs {
		if a.NameOnly {
			nameOnly = append(nameOnly, a.ASN)
		}
	}
	var got []uint32
	for _, a := range bd.NameOnly {
		got = append(got, a.ASN)
	}
	if !slices.Equal(got, nameOnly) || len(got) == 0 {
		t.Errorf("name-only %v, want %v", got, nameOnly)
	}
	// The largest prefixes come first, IPv4 then IPv6.
	if len(bd.Largest) != 20 || !bd.Largest[0].Prefix.Addr().Is4() || bd.Largest[0].Prefix.Bits() > bd.Largest[9].Prefix.Bits() || bd.Largest[10].Prefix.Addr().Is4() {
		t.Errorf("largest %+v", bd.Largest)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || len(doc["targets"].([]any)) != 2 {
		t.Fatalf("json: %v", err)
	}
	b.Reset()
	if err := r.WriteText(&b); err != nil || !strings.Contains(b.String(), "== target tencent: ") || !strings.Contains(b.String(), "attested by a cloud/hosting range list alone: 25 prefixes") {
		t.Errorf("text (%v):\n%.2000s", err, b.String())
	}
}

// The HTML page is self-contained and escapes what comes from the data.
func TestHTMLSelfContainedAndEscaped(t *testing.T) {
	s := load(t)
	s.Targets[0].Description = `<script>alert(1)</script>`
	s.Targets[0].ASNs = append(s.Targets[0].ASNs, asn.ASN{ASN: 64511, Name: `<img src=x onerror=alert(2)>`, NameOnly: true,
		Evidence: []asn.Evidence{{Source: `file:"><b>x`}}})
	var b bytes.Buffer
	if err := report.Build(s, nil).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"<script", "<img", "<b>x", `src="`, `href="`, "<link", "@import", "url("} {
		if strings.Contains(h, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "<svg", "<style>", "202.12.120.0/24"} {
		if !strings.Contains(h, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
