package filters

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// smallIntent is the fixed snapshot of the golden files (real prefixes of
// AS138699 and AS133478 and nested Tencent prefixes, see
// testdata/PROVENANCE.md) after a policy that protects one of them.
func smallIntent(t testing.TB) *policy.Intent {
	t.Helper()
	s, err := asn.ReadSnapshotFile("testdata/snapshot-small.json")
	if err != nil {
		t.Fatal(err)
	}
	return buildPolicy(t, policy.PolicyConfig{Protect: []string{"118.26.132.0/24"}}).Apply(s)
}

// buildPolicy is PolicyConfig.Build for a config the test knows is valid.
func buildPolicy(t testing.TB, pc policy.PolicyConfig) policy.Policy {
	t.Helper()
	pol, err := pc.Build()
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// emptyIntent has targets but nothing in them.
func emptyIntent() *policy.Intent {
	return policy.DefaultPolicy().Apply(&asn.Snapshot{Targets: []asn.TargetResult{{Name: "nothing"}}})
}

// embeddedIntent is the embedded default snapshot after the default policy.
func embeddedIntent(t testing.TB) *policy.Intent {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return policy.DefaultPolicy().Apply(s)
}

func goldenOptions(vendor string) RenderOptions {
	return RenderOptions{Vendor: vendor, Version: "0.0.0-test",
		Regenerate: "asfence generate --vendor " + vendor + " --snapshot snapshot-small.json"}
}

func render(t testing.TB, in *policy.Intent, o RenderOptions) []byte {
	t.Helper()
	out, err := Render(in, o)
	if err != nil {
		t.Fatalf("render %s: %v", o.Vendor, err)
	}
	return out
}

// TestGolden compares every vendor's output for the fixed snapshot with
// testdata/golden (go test ./filters -update rewrites them).
func TestGolden(t *testing.T) {
	in := smallIntent(t)
	for _, v := range Vendors() {
		t.Run(v, func(t *testing.T) {
			got := render(t, in, goldenOptions(v))
			path := filepath.Join("testdata", "golden", FileName(v))
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test ./filters -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", v, UnifiedDiff(path, "rendered", want, got))
			}
		})
	}
}

// TestRenderContent checks facts of the small snapshot in every output:
// the header, every route-filter entry and ASN, and that the protected
// prefix appears nowhere.
func TestRenderContent(t *testing.T) {
	in := smallIntent(t)
	v4 := in.RouteFilterEntries("", prefixset.IPv4)
	if len(v4) == 0 || len(in.ASNs("")) != 2 {
		t.Fatalf("fixture changed: %d v4 entries, ASNs %v", len(v4), in.ASNs(""))
	}
	for _, v := range Vendors() {
		out := string(render(t, in, goldenOptions(v)))
		for _, want := range []string{"0.0.0-test", "2026-11-23T00:00:00Z", "bytedance", "tencent",
			"Regenerate: asfence generate --vendor " + v, "file:ipverse"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: header lacks %q", v, want)
			}
		}
		// (the json vendor reports it among the drops, TestJSONOutput)
		if v != "json" && strings.Contains(out, "118.26.132.0") {
			t.Errorf("%s: protected prefix 118.26.132.0/24 was emitted", v)
		}
		if v == "nftables" {
			for _, p := range in.Coverage("", prefixset.IPv4) {
				if !strings.Contains(out, p.String()) {
					t.Errorf("%s: coverage prefix %s missing", v, p)
				}
			}
			continue
		}
		for _, r := range v4 {
			want := r.Prefix.String()
			if v == "huawei-vrp" {
				want = r.Prefix.Addr().String() + " " + itoa(r.Prefix.Bits())
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s: route-filter entry %s missing", v, r)
			}
		}
		for _, a := range in.ASNs("") {
			if !strings.Contains(out, itoa(int(a))) {
				t.Errorf("%s: ASN %d missing", v, a)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestJSONOutput decodes the json vendor and checks its structure.
func TestJSONOutput(t *testing.T) {
	in := smallIntent(t)
	out := render(t, in, goldenOptions("json"))
	var doc struct {
		Generator string `json:"generator"`
		Targets   []struct {
			Name     string       `json:"name"`
			Prefixes []asn.Prefix `json:"prefixes"`
		} `json:"targets"`
		All struct {
			ASNs        []uint32 `json:"asns"`
			RouteFilter struct {
				IPv4 []struct {
					Prefix netip.Prefix `json:"prefix"`
					Ge, Le int
				} `json:"ipv4"`
			} `json:"route_filter"`
			Coverage struct {
				IPv6 []netip.Prefix `json:"ipv6"`
			} `json:"coverage"`
		} `json:"all"`
		Dropped    []policy.Drop  `json:"dropped"`
		DropCounts map[string]int `json:"drop_counts"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("json output does not decode: %v", err)
	}
	if doc.Generator != "asfence 0.0.0-test" || len(doc.Targets) != 2 || len(doc.All.ASNs) != 2 {
		t.Errorf("unexpected document: %+v", doc)
	}
	if len(doc.All.RouteFilter.IPv4) != len(in.RouteFilterEntries("", prefixset.IPv4)) ||
		len(doc.All.Coverage.IPv6) != len(in.Coverage("", prefixset.IPv6)) {
		t.Errorf("route filter / coverage counts differ from the Intent")
	}
	if doc.DropCounts[policy.ReasonProtected] != 1 || len(doc.Dropped) != 1 || doc.Dropped[0].Prefix != "118.26.132.0/24" {
		t.Errorf("drop report: %+v %+v", doc.Dropped, doc.DropCounts)
	}
	for _, tg := range doc.Targets {
		for _, p := range tg.Prefixes {
			if len(p.Evidence) == 0 {
				t.Errorf("%s %s: no evidence", tg.Name, p.Prefix)
			}
		}
	}
}

// TestRenderEmpty: a target without prefixes or ASNs still renders for
// every vendor (the parser tests check the files are valid).
func TestRenderEmpty(t *testing.T) {
	in := emptyIntent()
	for _, v := range Vendors() {
		out := string(render(t, in, goldenOptions(v)))
		if v != "json" && !strings.Contains(out, "ASFENCE-") {
			t.Errorf("%s: empty render has no named objects:\n%s", v, out)
		}
	}
	out := string(render(t, in, goldenOptions("cisco-ios")))
	if !strings.Contains(out, "ip prefix-list ASFENCE-V4 deny 0.0.0.0/0") || strings.Contains(out, "match as-path") {
		t.Errorf("cisco-ios empty list / as-path clause:\n%s", out)
	}
	out = string(render(t, in, goldenOptions("junos")))
	if strings.Contains(out, "route-filter-list") || strings.Contains(out, "orlonger reject") {
		t.Errorf("junos: an empty route-filter-list must be left out (a reject-all entry would block everything):\n%s", out)
	}
}

func TestCapacity(t *testing.T) {
	in := smallIntent(t)
	n := len(in.RouteFilterEntries("", prefixset.IPv4))
	o := goldenOptions("junos")
	o.MaxEntries = n
	if _, err := Render(in, o); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	o.MaxEntries = n - 1
	_, err := Render(in, o)
	var ce *CapacityError
	if !errors.As(err, &ce) {
		t.Fatalf("over the limit: got %v, want a CapacityError", err)
	}
	if ce.Vendor != "junos" || ce.List != "ASFENCE-V4" || ce.Entries != n || ce.Max != n-1 {
		t.Errorf("capacity error %+v", ce)
	}
	for _, want := range []string{"junos", "ASFENCE-V4", itoa(n), itoa(n - 1)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Cisco ACLs count a line per direction.
	o = goldenOptions("cisco-ios")
	o.MaxEntries = 2*len(in.Coverage("", prefixset.IPv4)) - 1
	if _, err := Render(in, o); !errors.As(err, &ce) || ce.List != "ASFENCE-ACL-V4" {
		t.Errorf("cisco ACL capacity: %v", err)
	}
	if got := MaxEntriesFor(OutputConfig{MaxEntries: map[string]int{"default": 5, "junos": 7}}, "junos"); got != 7 {
		t.Errorf("MaxEntriesFor junos = %d", got)
	}
	if got := MaxEntriesFor(OutputConfig{MaxEntries: map[string]int{"default": 5}}, "bird"); got != 5 {
		t.Errorf("MaxEntriesFor bird = %d", got)
	}
}

func TestRenderRejects(t *testing.T) {
	in := smallIntent(t)
	for _, tc := range []struct {
		name string
		o    RenderOptions
		want string
	}{
		{"unknown vendor", RenderOptions{Vendor: "cisco-nxos"}, `unknown vendor "cisco-nxos"`},
		{"injected name", RenderOptions{Vendor: "frr", Names: Names{PrefixV4: "X\nrouter bgp 1"}}, "names.prefix_v4: invalid name"},
		{"quote in name", RenderOptions{Vendor: "openbgpd", Names: Names{ASPath: `A" { 1 }`}}, "names.as_path: invalid name"},
		{"negative max", RenderOptions{Vendor: "bird", MaxEntries: -1}, "negative"},
	} {
		if _, err := Render(in, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestHeaderSanitised: text from a snapshot file cannot break out of the
// header comment.
func TestHeaderSanitised(t *testing.T) {
	in := smallIntent(t)
	in.Generator = "evil */ policy-options { }\nrouter bgp 1"
	out := string(render(t, in, goldenOptions("junos")))
	if strings.Contains(out, "\nrouter bgp 1") || strings.Contains(out, "evil */") {
		t.Errorf("generator text escaped the header:\n%s", out[:400])
	}
}

func TestTemplatesDir(t *testing.T) {
	in := smallIntent(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bird.tmpl"), []byte("custom {{len .V4}} {{ident .Names.Policy}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := goldenOptions("bird")
	o.TemplatesDir = dir
	got := string(render(t, in, o))
	if want := "custom " + itoa(len(in.RouteFilterEntries("", prefixset.IPv4))) + " ASFENCE_REJECT\n"; got != want {
		t.Errorf("override: got %q, want %q", got, want)
	}
	// Vendors without an override still use the embedded template.
	o.Vendor = "frr"
	if out := string(render(t, in, o)); !strings.Contains(out, "route-map ASFENCE-REJECT deny 10") {
		t.Errorf("frr without override:\n%s", out)
	}
	// A broken override names its file.
	if err := os.WriteFile(filepath.Join(dir, "junos.tmpl"), []byte("{{.Nope"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Vendor = "junos"
	if _, err := Render(in, o); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "junos.tmpl")) {
		t.Errorf("broken override: %v", err)
	}
	// A field that does not exist fails at execution, naming the template.
	if err := os.WriteFile(filepath.Join(dir, "junos.tmpl"), []byte("{{.Nope}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Render(in, o); err == nil || !strings.Contains(err.Error(), "junos.tmpl") {
		t.Errorf("bad field: %v", err)
	}
}

func TestFileNames(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vendors() {
		n := FileName(v)
		if seen[n] || !strings.HasPrefix(n, "asfence") {
			t.Errorf("file name %q for %s", n, v)
		}
		seen[n] = true
	}
	if FileName("nftables") != "asfence.nft" || FileName("json") != "asfence.json" || FileName("junos") != "asfence-junos.conf" {
		t.Error("file names changed")
	}
}

// TestRenderLeavesOutDrops: what the policy drops or cuts out (a protected
// prefix, an exception inside a target prefix, the prefixes and AS-path
// entry of an excepted origin) appears in no vendor's lists (for the json
// vendor: in its "all" lists; evidence and the drop report name them).
func TestRenderLeavesOutDrops(t *testing.T) {
	s, err := asn.ReadSnapshotFile("testdata/snapshot-small.json")
	if err != nil {
		t.Fatal(err)
	}
	pc := policy.PolicyConfig{Protect: []string{"118.26.132.0/24"}}
	pc.Exceptions.Prefixes = []string{"71.18.255.128/25"}
	pc.Exceptions.ASNs = []uint32{133478}
	in := buildPolicy(t, pc).Apply(s)
	for _, v := range Vendors() {
		out := string(render(t, in, RenderOptions{Vendor: v}))
		if !strings.Contains(out, "71.18.255.0") || !strings.Contains(out, "1.116.0.0") {
			t.Errorf("%s: kept prefixes 71.18.255.0/25 or 1.116.0.0/15 missing", v)
		}
		if v == "json" {
			out = out[strings.Index(out, `"all": {`):strings.Index(out, `"dropped": [`)]
		}
		for _, bad := range []string{"118.26.132.0", "71.18.255.0/24", "71.18.255.128", "133478", "103.95.224.0", "240d:c000:f1e"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s output contains %q", v, bad)
			}
		}
	}
}

// TestJSONTemplateOverride: the json vendor's document is .Doc, laid out
// by json.tmpl; an override that writes it compact holds the same JSON
// value as the embedded layout.
func TestJSONTemplateOverride(t *testing.T) {
	in := smallIntent(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "json.tmpl"), []byte("{{json .Doc}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := goldenOptions("json")
	laidOut := render(t, in, o)
	o.TemplatesDir = dir
	compact := render(t, in, o)
	if bytes.Count(compact, []byte("\n")) != 1 || bytes.Equal(compact, laidOut) {
		t.Fatalf("override not used:\n%.300s", compact)
	}
	var a, b any
	if err := json.Unmarshal(laidOut, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(compact, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the compact document differs from the laid-out one:\n%s\n%s", compact, laidOut)
	}
}
