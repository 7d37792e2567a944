package rpsl

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, rd *Reader) ([]*Object, error) {
	t.Helper()
	var out []*Object
	for {
		o, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
}

func TestReaderSyntax(t *testing.T) {
	text := "# header\n% whois comment\n\n" +
		"AS-SET:  as-example # the key\n" +
		"descr:   line one\n" +
		"\tline two # comment\n" +
		"+\n" +
		" line four\n" +
		"members: AS1, AS2\r\n" +
		"source:  test\n" +
		"   \n" +
		"route: 192.0.2.0/24\norigin: AS64500\nsource: TEST" // no final newline
	objs, err := readAll(t, NewReader(strings.NewReader(text), "x.rpsl"))
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
	if o.AttrLine("members") != 9 || o.AttrLine("missing") != 4 {
		t.Errorf("attribute lines %d %d", o.AttrLine("members"), o.AttrLine("missing"))
	}
	if o.Source() != "TEST" {
		t.Errorf("source %q", o.Source())
	}
	if v, _ := objs[1].Get("source"); v != "TEST" || objs[1].Line != 12 {
		t.Errorf("last object %+v", objs[1])
	}
}

// TestReaderFilters: skipped classes and attributes are not built, but
// their lines are still checked.
func TestReaderFilters(t *testing.T) {
	text := "aut-num: AS1\nas-name: ONE\nimport: from AS2\n  accept ANY\nmnt-by: M1\nmnt-by: M2\n\n" +
		"route: 192.0.2.0/24\norigin: AS1\n  continued\n\n" +
		"AUT-NUM: AS3\nDescr: three\n  more three\nMNT-BY: M3\n"
	rd := NewReader(strings.NewReader(text), "f")
	rd.Classes("aut-num")
	rd.Attributes("mnt-by", "descr")
	objs, err := readAll(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Key != "AS1" || objs[1].Key != "AS3" {
		t.Fatalf("objects %+v", objs)
	}
	if n := len(objs[0].Attrs); n != 3 { // aut-num, mnt-by, mnt-by
		t.Errorf("first object has %d attributes: %+v", n, objs[0].Attrs)
	}
	if got := objs[0].Values("mnt-by"); len(got) != 2 || got[1] != "M2" {
		t.Errorf("mnt-by %v", got)
	}
	if d, _ := objs[1].Get("descr"); d != "three\nmore three" {
		t.Errorf("descr %q", d)
	}
	if objs[1].Class != "aut-num" || objs[1].Line != 12 {
		t.Errorf("upper-case class %q line %d", objs[1].Class, objs[1].Line)
	}

	// Reuse: one Object for all; strings taken from it stay valid.
	rd = NewReader(strings.NewReader(text), "f")
	rd.Classes("aut-num")
	rd.Reuse()
	a, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	key, mnt := a.Key, a.Values("mnt-by")
	b, err := rd.Next()
	if err != nil || a != b || b.Key != "AS3" || key != "AS1" || mnt[1] != "M2" || len(b.Values("mnt-by")) != 1 {
		t.Errorf("reuse: %p %p %q %q %v %v", a, b, b.Key, key, mnt, err)
	}

	// A broken line inside a skipped object is still an error.
	rd = NewReader(strings.NewReader("route: 192.0.2.0/24\norigin AS1\n\naut-num: AS1\n"), "g")
	rd.Classes("aut-num")
	_, err = readAll(t, rd)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "g:2: want \"attribute: value\"") {
		t.Errorf("broken skipped object: %v", err)
	}
}

func TestReaderErrors(t *testing.T) {
	long := "descr: " + strings.Repeat("x", MaxLineBytes+10) + "\n"
	for _, tc := range []struct{ name, text, want string }{
		{"continuation", "\n  AS1\n", "f.rpsl:2: continuation line outside an object"},
		{"no colon", "route: 192.0.2.0/24\norigin AS1\n", "f.rpsl:2: want \"attribute: value\""},
		{"bad attr", "route: 192.0.2.0/24\nori gin: AS1\n", "f.rpsl:2: invalid attribute name"},
		{"long line", "route: 192.0.2.0/24\n" + long, "f.rpsl:2: line longer than"},
		{"not rpsl", "{\"json\": true}\n", "f.rpsl:1: invalid attribute name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Parse("f.rpsl", strings.NewReader(tc.text), func(*Object) error { return nil })
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
		})
	}
	// A read error names the file and the line it happened in.
	r := io.MultiReader(strings.NewReader("inetnum: 192.0.2.0 - 192.0.2.255\nnetname: X\nsou"), iotest.ErrReader(io.ErrUnexpectedEOF))
	err := Parse("d.gz", r, func(*Object) error { return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "d.gz:3: ") {
		t.Errorf("read error: %v", err)
	}
}

func TestParseASN(t *testing.T) {
	for s, want := range map[string]uint32{"AS1": 1, "as4200000000": 4200000000, "64512": 64512, "AS1.10": 65546, " AS3 ": 3} {
		if got, err := ParseASN(s); err != nil || got != want {
			t.Errorf("ParseASN(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "AS", "AS-1", "AS4294967296", "ASx", "AS1.65536", "AS+1", "AS1.", "AS.1"} {
		if _, err := ParseASN(s); err == nil {
			t.Errorf("ParseASN(%q) accepted", s)
		}
	}
}

func TestParseLargeAutNum(t *testing.T) {
	f, err := os.Open("../irr/testdata/ripe-aut-num-AS3257.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []*Object
	if err := Parse(f.Name(), f, func(o *Object) error { objs = append(objs, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Class != "aut-num" || objs[0].Key != "AS3257" {
		t.Fatalf("objects: %d", len(objs))
	}
	counts := map[string]int{}
	for _, a := range objs[0].Attrs {
		counts[a.Name]++
	}
	for name, n := range map[string]int{"import": 2916, "export": 2916, "mp-import": 1857, "mp-export": 1857} {
		if counts[name] != n {
			t.Errorf("%s: %d attributes, want %d", name, counts[name], n)
		}
	}
}

// FuzzReader: no input makes the reader panic, and what it returns keeps
// its invariants, with and without filters.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"inetnum: 192.0.2.0 - 192.0.2.255\nnetname: X\norg: ORG-X\nmnt-by: M\n\n",
		"aut-num: AS1\nas-name: X\n  more\n+\nsource: X\n\nroute: 192.0.2.0/24\n",
		"\n  continuation\n",
		"# c\n%c\nA:\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, filter bool) {
		rd := NewReader(strings.NewReader(string(data)), "fuzz")
		if filter {
			rd.Classes("inetnum", "aut-num")
			rd.Attributes("org", "mnt-by")
			rd.Reuse()
		}
		for {
			o, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error without a place: %v", err)
				}
				return
			}
			if o.Class == "" || o.Line < 1 || len(o.Attrs) == 0 || o.Attrs[0].Name != o.Class {
				t.Fatalf("bad object %+v", o)
			}
			if filter && o.Class != "inetnum" && o.Class != "aut-num" {
				t.Fatalf("class %q not asked for", o.Class)
			}
		}
	})
}
