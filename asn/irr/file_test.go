package irr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/irr"
)

// writeRPSL concatenates real test files and test sets into one file.
func writeRPSL(t *testing.T, extra string, paths ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteString("\n")
	}
	b.WriteString(extra)
	out := filepath.Join(t.TempDir(), "all.rpsl")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFileSource(t *testing.T) {
	path := writeRPSL(t, testSets, realFiles...)
	seen := time.Date(2023, 11, 28, 0, 0, 0, 0, time.UTC)
	f, err := irr.NewFile(files.Options{Path: path, Seen: seen, Note: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "file:rpsl:"+path {
		t.Errorf("name %q", f.Name())
	}
	data, _ := os.ReadFile(path)
	sum := sha256.Sum256(data)
	if p := f.Provenance(); len(p) != 1 || p[0].SHA256 != hex.EncodeToString(sum[:]) || p[0].Input != path || p[0].Source != "file:rpsl" || p[0].Note != "test" {
		t.Errorf("provenance %+v", p)
	}
	ctx := context.Background()
	tg := &asn.Target{Name: "t", ASSets: []string{"AS-TOP", "as-tencent"}}
	members, err := f.Discover(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := asnsOf(members); !slices.Equal(got, []uint32{702, 1849, 2561, 12041}) {
		t.Fatalf("members %v", got)
	}
	for _, m := range members {
		if m.ASN == 702 && m.Evidence.Detail != "member of AS-TOP > AS-MID > AS702:AS-DEEP (as-set in TEST, "+path+")" {
			t.Errorf("detail %q", m.Evidence.Detail)
		}
		if m.Evidence.Source != "file:rpsl" || !m.Evidence.Seen.Equal(seen) {
			t.Errorf("evidence %+v", m.Evidence)
		}
	}
	facts, err := f.Resolve(ctx, tg, []uint32{45090, 2561, 12041})
	if err != nil {
		t.Fatal(err)
	}
	if n4, n6 := len(prefixesOf(facts.Prefixes, false)), len(prefixesOf(facts.Prefixes, true)); n4 != 16 || n6 != 28 {
		t.Errorf("%d IPv4, %d IPv6 prefixes", n4, n6)
	}
	for _, p := range facts.Prefixes {
		want := "route object, origin AS2561 (RIPE-NONAUTH)"
		if p.Origin == 12041 {
			want = "route6 object, origin AS12041 (RIPE-NONAUTH)"
		}
		if p.Evidence.Detail != want {
			t.Fatalf("%s: %q", p.Prefix, p.Evidence.Detail)
		}
	}
	if len(facts.ASNs) != 1 || facts.ASNs[0].Name != "CNNIC-TENCENT-NET-AP" || facts.ASNs[0].Evidence.Detail != "aut-num AS45090 as-name CNNIC-TENCENT-NET-AP (RIPE-NONAUTH)" {
		t.Errorf("names %+v", facts.ASNs)
	}

	// Through the engine: members, their prefixes and names, provenance.
	eng := &asn.Engine{Sources: []asn.Source{f}}
	snap, err := eng.Run(ctx, []asn.Target{{Name: "t", ASSets: []string{"AS-TOP"}, ASNs: []asn.SeedASN{{ASN: 45090, Why: "test"}}}})
	if err != nil || len(snap.Incomplete) != 0 {
		t.Fatalf("%v %v", err, snap.Incomplete)
	}
	res := snap.Target("t")
	if len(res.ASNs) != 5 || len(res.Prefixes) != 16+8+3+28 || len(snap.Provenance) != 1 {
		t.Errorf("%d ASNs, %d prefixes, provenance %v", len(res.ASNs), len(res.Prefixes), snap.Provenance)
	}
	for _, a := range res.ASNs {
		if a.ASN == 45090 && a.Name != "TENCENT-NET-AP" && a.Name != "CNNIC-TENCENT-NET-AP" {
			t.Errorf("AS45090 name %q", a.Name)
		}
	}
}

func TestFileSourceErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.rpsl")
	os.WriteFile(bad, []byte("route: 192.0.2.0/24\norigin: AS1\nsource: X\n\nroute: 198.51.100.0/24\norigin: ASX\nsource: X\n"), 0o644)
	_, err := irr.NewFile(files.Options{Path: bad, Source: "file:mine"})
	if err == nil || err.Error() != "file:mine: "+bad+":6: route 198.51.100.0/24: origin: invalid AS number \"ASX\"" {
		t.Errorf("error %v", err)
	}
	_, err = irr.NewFile(files.Options{Path: filepath.Join(t.TempDir(), "missing.rpsl")})
	if err == nil || !strings.HasPrefix(err.Error(), "file:rpsl: ") {
		t.Errorf("error %v", err)
	}
}
