package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
	"github.com/asfence/asfence/asn/rpsl"
)

const excerpt = "testdata/ripe-ris-bview.20020722.2337.bgpdump-m.excerpt.txt"

func TestGenerate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.rpsl")
	st, err := generateFile(excerpt, out, "as-bench", "bench")
	if err != nil {
		t.Fatal(err)
	}
	if st.lines != 204 || st.asSetOrigin != 3 || st.special != 1 || st.routes != 201 || st.routes6 != 0 {
		t.Errorf("stats %+v", st)
	}
	x, err := irr.LoadFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	if x.Count("route") != 201 || !slices.Equal(x.Sources(), []string{"BENCH"}) {
		t.Errorf("%d routes, sources %v", x.Count("route"), x.Sources())
	}
	// The origins of the excerpt, as a shell pipeline would find them.
	data, _ := os.ReadFile(excerpt)
	var want []uint32
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		path := strings.Fields(strings.Split(line, "|")[6])
		last := path[len(path)-1]
		if strings.HasSuffix(last, "}") || last == "65003" {
			continue
		}
		a, _ := rpsl.ParseASN(last)
		if !slices.Contains(want, a) {
			want = append(want, a)
		}
	}
	slices.Sort(want)
	if st.origins != len(want) {
		t.Errorf("%d origins in the AS-SET, want %d", st.origins, len(want))
	}

	// Served and expanded: the AS-SET holds exactly those origins, the
	// loop back to the top set is harmless.
	srv, err := irrd.Listen("127.0.0.1:0", x, irrd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := irr.New(irr.Config{Address: srv.Addr(), Sources: []string{"BENCH"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	facts, err := c.Discover(context.Background(), &asn.Target{Name: "bench", ASSets: []string{"AS-BENCH"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, f := range facts {
		got = append(got, f.ASN)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("AS-BENCH members %v\nwant %v", got, want)
	}
	if !strings.Contains(facts[0].Evidence.Detail, "AS-BENCH > AS-BENCH-G000 > AS-BENCH-L0000") {
		t.Errorf("path %q", facts[0].Evidence.Detail)
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("TABLE_DUMP|1|B|192.0.2.1|1853|3.0.0.0/8|1853 80|IGP|\nTABLE_DUMP|1|B|192.0.2.1|1853|3.0.0.1/8|1853 80|IGP|\n"), 0o644)
	if _, err := generateFile(bad, filepath.Join(dir, "o.rpsl"), "AS-B", "B"); err == nil || err.Error() != bad+":2: invalid prefix \"3.0.0.1/8\"" {
		t.Errorf("error %v", err)
	}
	os.WriteFile(bad, []byte("TABLE_DUMP|1|B|192.0.2.1|1853|3.0.0.0/8|1853 8x0|IGP|\n"), 0o644)
	if _, err := generateFile(bad, filepath.Join(dir, "o.rpsl"), "AS-B", "B"); err == nil || !strings.HasPrefix(err.Error(), bad+":1: AS path") {
		t.Errorf("error %v", err)
	}
	if _, err := generateFile(filepath.Join(dir, "none.gz"), filepath.Join(dir, "o.rpsl"), "AS-B", "B"); err == nil {
		t.Error("missing input accepted")
	}
}

// The scale dataset loads as n route objects of the origin, no two adjacent,
// and the AS-SET holding it.
func TestGenerateScale(t *testing.T) {
	out := filepath.Join(t.TempDir(), "scale.rpsl")
	if err := generateScale(1000, 60000, out, "as-bench", "bench"); err != nil {
		t.Fatal(err)
	}
	x, err := irr.LoadFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := x.Count("route"); n != 1000 {
		t.Fatalf("%d route objects, want 1000", n)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"route:          32.0.0.0/24\norigin:         AS60000\nsource:         BENCH\n", "route:          32.0.2.0/24\n", "route:          32.7.206.0/24\n", "as-set:         AS-BENCH\nmembers:        AS60000\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dataset lacks %q", want)
		}
	}
	if strings.Contains(string(b), "32.0.1.0/24") {
		t.Error("adjacent /24s generated")
	}
	for _, n := range []int{0, scaleMax + 1} {
		if err := generateScale(n, 60000, out, "AS-B", "B"); err == nil {
			t.Errorf("n=%d accepted", n)
		}
	}
}
