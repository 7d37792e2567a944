package irr

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn/rpsl"
)

func parseAll(t *testing.T, name, text string) ([]*rpsl.Object, error) {
	t.Helper()
	var out []*rpsl.Object
	err := rpsl.Parse(name, strings.NewReader(text), func(o *rpsl.Object) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func TestParseRealFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.rpsl")
	if err != nil || len(files) != 5 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	want := map[string]map[string]int{
		"ripe-as-set-tencent-bytedance-refs.rpsl":    {"as-set": 8},
		"ripe-aut-num-AS3257.rpsl":                   {"aut-num": 1},
		"ripe-nonauth-aut-num-AS132203-AS45090.rpsl": {"aut-num": 2},
		"ripe-nonauth-route-sample.rpsl":             {"route": 62},
		"ripe-nonauth-route6-sample.rpsl":            {"route6": 40},
	}
	for _, f := range files {
		x := NewIndex()
		if err := x.AddFile(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for class, n := range want[filepath.Base(f)] {
			if got := x.Count(class); got != n {
				t.Errorf("%s: %d %s objects, want %d", f, got, class, n)
			}
		}
	}
}

func TestRealASSets(t *testing.T) {
	x, err := LoadFiles("testdata/ripe-as-set-tencent-bytedance-refs.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := x.Set("as-tencent", nil)
	if !ok || !slices.Equal(s.Members, []string{"AS132203:AS-TENCENT"}) || s.Source != "RIPE" {
		t.Errorf("AS-TENCENT: %+v %v", s, ok)
	}
	// Inline comments: "AS-BYTEDANCE   #  AS396986  TikTok ..." is one member.
	s, ok = x.Set("AS-SET-LONAP-CONNECTED", []string{"RIPE"})
	if !ok || !slices.Contains(s.Members, "AS-BYTEDANCE") {
		t.Fatalf("AS-SET-LONAP-CONNECTED: %v %v", ok, s.Members)
	}
	for _, m := range s.Members {
		if strings.ContainsAny(m, "# ") || m == "TIKTOK" || m == "INFORMATION" {
			t.Errorf("comment text became a member: %q", m)
		}
	}
	// Comma-separated members over continuation lines.
	s, _ = x.Set("AS-GLOBEINTERNET-CLIENTS", nil)
	for _, m := range []string{"AS-016", "AS-10130-TRANSIT", "AS132591:AS-TENCENT", "AS-AKAMAI"} {
		if !slices.Contains(s.Members, m) {
			t.Errorf("AS-GLOBEINTERNET-CLIENTS lacks %s (%d members)", m, len(s.Members))
		}
	}
	if _, ok := x.Set("AS-TENCENT", []string{"RADB"}); ok {
		t.Error("AS-TENCENT found in source RADB")
	}
	if _, ok := x.Set("AS-BYTEDANCE", nil); ok {
		t.Error("AS-BYTEDANCE is not in the dump but was found")
	}
}

func TestRealRoutesAndAutNums(t *testing.T) {
	x, err := LoadFiles("testdata/ripe-nonauth-route-sample.rpsl", "testdata/ripe-nonauth-route6-sample.rpsl", "testdata/ripe-nonauth-aut-num-AS132203-AS45090.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.Routes(2561, false, nil)); n != 16 {
		t.Errorf("AS2561: %d routes, want 16", n)
	}
	r := x.Routes(702, false, []string{"RIPE-NONAUTH"})
	if !slices.ContainsFunc(r, func(r Route) bool { return r.Prefix == netip.MustParsePrefix("203.195.128.0/17") }) {
		t.Errorf("AS702 routes %v lack 203.195.128.0/17", r)
	}
	if n := len(x.Routes(12041, true, nil)); n != 28 {
		t.Errorf("AS12041: %d route6, want 28", n)
	}
	if n := len(x.Routes(12041, false, nil)); n != 0 {
		t.Errorf("AS12041: %d IPv4 routes, want 0", n)
	}
	if r := x.Routes(2561, false, []string{"RIPE"}); len(r) != 0 {
		t.Errorf("source filter: %v", r)
	}
	a := x.AutNums(45090, nil)
	if len(a) != 1 || a[0].Name != "CNNIC-TENCENT-NET-AP" || a[0].Source != "RIPE-NONAUTH" {
		t.Errorf("AS45090 aut-num: %+v", a)
	}
	if !slices.Equal(x.Sources(), []string{"RIPE-NONAUTH"}) {
		t.Errorf("sources %v", x.Sources())
	}
}

func TestParseSyntax(t *testing.T) {
	text := "# header\n% whois comment\n\n" +
		"AS-SET:  as-example # the key\n" +
		"descr:   line one\n" +
		"\tline two # comment\n" +
		"+\n" +
		" line four\n" +
		"members: AS1, AS2 AS-NESTED,\n" +
		"         as3\n" +
		"mp-members: AS4\r\n" +
		"source:  test\n" +
		"   \n" +
		"route: 192.0.2.0/24\norigin: AS64500\nsource: TEST"
	objs, err := parseAll(t, "x.rpsl", text)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("%d objects", len(objs))
	}
	o := objs[0]
	if o.Class != "as-set" || o.Key != "as-example" || o.Line != 4 || o.File != "x.rpsl" {
		t.Errorf("object %q %q line %d", o.Class, o.Key, o.Line)
	}
	if d, _ := o.Get("descr"); d != "line one\nline two\nline four" {
		t.Errorf("descr %q", d)
	}
	x := NewIndex()
	for _, o := range objs {
		if err := x.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	s, ok := x.Set("AS-EXAMPLE", []string{"TEST"})
	if !ok || !slices.Equal(s.Members, []string{"AS1", "AS2", "AS-NESTED", "AS3", "AS4"}) {
		t.Errorf("members %v", s.Members)
	}
	if r := x.Routes(64500, false, nil); len(r) != 1 || r[0].Source != "TEST" {
		t.Errorf("routes %v", r)
	}
}

func TestParseErrors(t *testing.T) {
	long := "descr: " + strings.Repeat("x", rpsl.MaxLineBytes+10) + "\n"
	for _, tc := range []struct{ name, text, want string }{
		{"continuation", "\n  AS1\n", "f.rpsl:2: continuation line outside an object"},
		{"no colon", "route: 192.0.2.0/24\norigin AS1\n", "f.rpsl:2: want \"attribute: value\""},
		{"bad attr", "route: 192.0.2.0/24\nori gin: AS1\n", "f.rpsl:2: invalid attribute name"},
		{"long line", "route: 192.0.2.0/24\n" + long, "f.rpsl:2: line longer than"},
		{"bad prefix", "\n\nroute: 192.0.2.300/24\norigin: AS1\nsource: X\n", "f.rpsl:3: route: invalid prefix"},
		{"host bits", "route: 192.0.2.1/24\norigin: AS1\nsource: X\n", "f.rpsl:1: route: invalid prefix"},
		{"family", "route6: 192.0.2.0/24\norigin: AS1\nsource: X\n", "f.rpsl:1: route6: 192.0.2.0/24 is the wrong address family"},
		{"origin", "route: 192.0.2.0/24\nsource: X\norigin: ASX1\n", "f.rpsl:3: route 192.0.2.0/24: origin: invalid AS number"},
		{"no origin", "route: 192.0.2.0/24\nsource: X\n", "f.rpsl:1: route 192.0.2.0/24 has no origin"},
		{"no source", "as-set: AS-X\nmembers: AS1\n", "f.rpsl:1: as-set AS-X has no source"},
		{"set name", "as-set: FOO\nsource: X\n", "f.rpsl:1: as-set: invalid name"},
		{"twice", "as-set: AS-X\nsource: X\n\nas-set: as-x\nsource: x\n", "f.rpsl:4: as-set AS-X is defined twice in source X (first at f.rpsl:1)"},
		{"aut-num", "aut-num: ASN1\nsource: X\n", "f.rpsl:1: aut-num: invalid AS number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewIndex().AddRPSL("f.rpsl", strings.NewReader(tc.text))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
			var pe *rpsl.ParseError
			if !errors.As(err, &pe) || pe.File != "f.rpsl" {
				t.Errorf("not a ParseError naming the file: %#v", err)
			}
		})
	}
}

func TestSpecialASN(t *testing.T) {
	for _, a := range []uint32{0, 23456, 64496, 64511, 64512, 65534, 65535, 65551, 4200000000, 4294967295} {
		if !SpecialASN(a) {
			t.Errorf("AS%d not special", a)
		}
	}
	for _, a := range []uint32{1, 3333, 64495, 65552, 132203, 4199999999} {
		if SpecialASN(a) {
			t.Errorf("AS%d special", a)
		}
	}
}

// FuzzParseRPSL: no input makes the parser or the index panic, and what
// parses keeps its invariants.
func FuzzParseRPSL(f *testing.F) {
	for _, s := range []string{
		"route: 192.0.2.0/24\norigin: AS1\nsource: X\n",
		"as-set: AS-X\nmembers: AS1, AS-Y # c\n  AS2\n+\nsource: X\n\nas-set: AS-Y\nmembers: AS-X\nsource: X\n",
		"aut-num: AS1\nas-name: X\nsource: X\n",
		"route6: 2001:db8::/32\norigin: AS1.1\nsource: X\n",
		"\n  continuation\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x := NewIndex()
		err := rpsl.Parse("fuzz", strings.NewReader(string(data)), func(o *rpsl.Object) error {
			if o.Class == "" || o.Line < 1 || len(o.Attrs) == 0 || o.Attrs[0].Name != o.Class {
				t.Fatalf("bad object %+v", o)
			}
			_ = x.Add(o)
			return nil
		})
		var pe *rpsl.ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error without a place: %v", err)
		}
		for _, src := range x.Sources() {
			if src == "" {
				t.Fatal("empty source indexed")
			}
		}
	})
}
