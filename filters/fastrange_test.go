package filters

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// TestCompiledRangesAsTextTemplate renders every vendor's full and
// incremental template with compiled ranges and with text/template alone:
// the bytes must be the same.
func TestCompiledRangesAsTextTemplate(t *testing.T) {
	intents := map[string]*policy.Intent{"small": smallIntent(t), "embedded": embeddedIntent(t), "empty": emptyIntent()}
	for name, in := range intents {
		for _, v := range Vendors() {
			o := goldenOptions(v)
			fast := render(t, in, o)
			o.interpreted = true
			slow := render(t, in, o)
			if !bytes.Equal(fast, slow) {
				t.Errorf("%s, %s: compiled ranges differ from text/template:\n%s", name, v, UnifiedDiff("text/template", "compiled", slow, fast))
			}
		}
	}
	for _, v := range Vendors() {
		for _, pair := range [][2]string{{"small", "embedded"}, {"embedded", "small"}, {"empty", "small"}, {"small", "empty"}} {
			o := goldenOptions(v)
			fast, err := IncrementalCommands(v, intents[pair[0]], intents[pair[1]], o)
			if err != nil {
				t.Fatal(err)
			}
			o.interpreted = true
			slow, err := IncrementalCommands(v, intents[pair[0]], intents[pair[1]], o)
			if err != nil {
				t.Fatal(err)
			}
			if fast != slow {
				t.Errorf("%s %s -> %s: compiled %+v, text/template %+v", v, pair[0], pair[1], fast, slow)
			}
		}
	}
}

// TestEmbeddedRangesCompiled: the ranges over the long lists of every
// embedded full template are compiled (not left to text/template, which
// takes seconds for a million entries).
func TestEmbeddedRangesCompiled(t *testing.T) {
	for _, v := range vendorTable() {
		if v.evidence {
			continue // the json document writes its lists through methods
		}
		tmpl, fr, err := loadTemplate(v.template, "", true)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if v.prefixLists {
			want += 2
		}
		if v.acl != aclNone {
			want += 2
		}
		if len(fr.bodies) < want {
			t.Errorf("%s: %d ranges compiled, want at least %d (one per long list)", tmpl.Name(), len(fr.bodies), want)
		}
	}
}

// TestCompiledRangesOverride: a templates_dir override whose bodies use
// every construct the compiler handles, and some it leaves to
// text/template, renders the same both ways.
func TestCompiledRangesOverride(t *testing.T) {
	in := smallIntent(t)
	dir := t.TempDir()
	src := `{{define "e"}}{{.Net}}{{if .IsExact}}={{else if not .GeAbove}}<{{.Le}}{{else}}[{{.Ge}},{{.Le}}]{{end}}{{end -}}
{{$n := .Names.PrefixV4}}{{$v := .Version}}{{$l := .Lists}}
{{- range .V4}}{{$n}} {{$.Names.Policy}} {{$v}} {{.N}} {{template "e" .}} {{.Str}} {{.Addr}} {{.Len}} {{.Prefix}} {{.IsExact}} {{.LeAbove}} {{.Last}}{{if .Len}}!{{end}}
{{end -}}
{{range .V6}}{{$l}} {{.Net}}
{{end -}}
{{range .Cov4}}{{.Net}} {{.Addr}} {{.Wildcard}} {{.Host}} {{.Len}} {{.N}} {{.Last}} {{if .Wildcard}}w{{end}}
{{else}}none
{{end -}}
{{range .Cov6}}{{.Net}} [{{.Wildcard}}] {{.Host}}{{if not .Wildcard}} no wildcard{{end}}
{{end -}}
{{range $i, $e := .V4}}{{$i}}:{{$e.Net}} {{end}}
{{range .V6}}{{.Nope}}{{end}}{{range .ASNs}}{{.}} {{end}}
`
	if err := os.WriteFile(filepath.Join(dir, "bird.tmpl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	o := goldenOptions("bird")
	o.TemplatesDir = dir
	for _, x := range []*policy.Intent{in, emptyIntent()} {
		if len(x.Exact("", 6)) == 0 && x == in {
			t.Fatal("the small intent has no IPv6 prefixes: the test needs them")
		}
		fast, errFast := Render(x, o)
		o.interpreted = true
		slow, errSlow := Render(x, o)
		o.interpreted = false
		if (errFast == nil) != (errSlow == nil) || !bytes.Equal(fast, slow) {
			t.Errorf("compiled (%v) and text/template (%v) differ:\n%s", errFast, errSlow, UnifiedDiff("text/template", "compiled", slow, fast))
		}
		if x == in && (errFast == nil || !strings.Contains(errFast.Error(), "Nope")) {
			t.Errorf("a field that does not exist: %v", errFast)
		}
	}
	// Without the failing range the file renders, and the compiled
	// output is what was asked for.
	src = strings.Replace(src, "{{range .V6}}{{.Nope}}{{end}}", "", 1)
	if err := os.WriteFile(filepath.Join(dir, "bird.tmpl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	fast := string(render(t, in, o))
	o.interpreted = true
	if slow := string(render(t, in, o)); fast != slow {
		t.Errorf("compiled and text/template differ:\n%s", UnifiedDiff("text/template", "compiled", []byte(slow), []byte(fast)))
	}
	tmpl, fr, err := loadTemplate("bird.tmpl", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(fr.bodies) != 4 {
		t.Errorf("%s: %d ranges compiled, want 4 (V4, V6, Cov4, Cov6)", tmpl.Name(), len(fr.bodies))
	}
	if !strings.Contains(fast, "ASFENCE-V4 ASFENCE-REJECT 0.0.0-test 1 ") {
		t.Errorf("outer variables not written:\n%s", fast)
	}
}

// TestJSONListsAsEncodingJSON: the lists the json document writes
// directly (prefixes, ranges) are what encoding/json writes.
func TestJSONListsAsEncodingJSON(t *testing.T) {
	ps := jsonList[netip.Prefix]{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"), {}, netip.MustParsePrefix("0.0.0.0/0")}
	rs := jsonList[jsonRange]{{ps[0], 24, 32}, {ps[1], 33, 48}, {ps[2], 0, 0}}
	check := func(name string, got string, elems []any) {
		t.Helper()
		want := "["
		for i, e := range elems {
			var j bytes.Buffer
			if err := newJSONEncoder(&j).Encode(e); err != nil { // encoding/json, no HTML escaping
				t.Fatal(err)
			}
			if i > 0 {
				want += ","
			}
			want += "\n      " + strings.TrimSuffix(j.String(), "\n")
		}
		want += "\n    ]"
		if got != want {
			t.Errorf("%s:\n%s\nwant\n%s", name, got, want)
		}
	}
	got, err := ps.Lines(6)
	if err != nil {
		t.Fatal(err)
	}
	var elems []any
	for _, p := range ps {
		elems = append(elems, p)
	}
	check("prefixes", got, elems)
	if got, err = rs.Lines(6); err != nil {
		t.Fatal(err)
	}
	elems = nil
	for _, r := range rs {
		elems = append(elems, r)
	}
	check("ranges", got, elems)
	seen := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))
	p := netip.MustParsePrefix("192.0.2.0/24")
	aps := jsonList[asn.Prefix]{
		{Prefix: p, Origins: []uint32{64500, 64501}, Evidence: []asn.Evidence{{Source: "irr:RADB", Detail: "route object", Seen: seen}, {Source: "rir:apnic", Seen: seen.UTC()}}},
		{Prefix: p, Origins: []uint32{}, Upstreams: []uint32{64502}, Evidence: []asn.Evidence{{Source: "irr:RADB", Detail: "route object", Seen: seen}}},
		{Prefix: p, Evidence: []asn.Evidence{{Source: "s"}}},
		{Prefix: p, Origins: []uint32{1}},
		{Prefix: p, Origins: []uint32{1}, Evidence: []asn.Evidence{}},
		{Prefix: p, Origins: []uint32{1}, Evidence: []asn.Evidence{{Source: "s", Detail: "AT&T <x> \"q\" \\ \u2028 \x01 \n é \xff"}}},
		{Prefix: p, Origins: []uint32{1}, Evidence: []asn.Evidence{{Source: "s", Detail: "d", Seen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	}
	for _, x := range aps[:len(aps)-1] {
		elems = append(elems[:0], x)
		one := jsonList[asn.Prefix]{x}
		got, err := one.Lines(6)
		if err != nil {
			t.Fatal(err)
		}
		check("prefixes with evidence", got, elems)
	}
	if _, err := aps[len(aps)-1:].Lines(6); err == nil {
		t.Errorf("a time encoding/json refuses was written")
	}
}
