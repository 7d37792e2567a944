package rpki

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/internal/fetch"
)

const current = "testdata/constructed/rpki-client.json"

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRealExports(t *testing.T) {
	// Routinator's own test output: "asn": "AS1234", epoch = unknown time.
	s, err := Parse(read(t, "testdata/routinator-test-output-100.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 2 || len(s.Origins(1234)) != 2 || s.Origins(1234)[0].Prefix.String() != "12.34.56.0/24" || !s.Generated.IsZero() {
		t.Fatalf("routinator: %+v", s)
	}
	// An rpki-client 2021 export (string ASNs, a buildtime).
	s, err = Parse(read(t, "testdata/rpki-client-lab-2021.json"))
	if err != nil {
		t.Fatal(err)
	}
	v := s.Origins(65001)
	if s.Count != 6 || len(v) != 2 || v[1].Prefix.String() != "2001:db8::/32" || v[1].MaxLength != 64 || v[1].TA != "testbed" ||
		!s.Generated.Equal(time.Date(2021, 7, 26, 8, 4, 49, 0, time.UTC)) {
		t.Fatalf("rpki-client 2021: %+v", s)
	}
	// Current rpki-client: numeric ASNs, "expires", "bgpsec_keys".
	s, err = Parse(read(t, current))
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 14 || len(s.Origins(45090)) != 4 || len(s.Origins(0)) != 1 {
		t.Fatalf("rpki-client current: %d VRPs, %v", s.Count, s.Origins(45090))
	}
}

func TestResolve(t *testing.T) {
	src, err := New(Options{Path: current})
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	facts, err := src.Resolve(context.Background(), &tencent, []uint32{45090, 133478, 9390})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range facts.Prefixes {
		got = append(got, f.Prefix.String())
		if f.Prefix.String() == "1.12.0.0/14" {
			if f.Origin != 45090 || f.Evidence.Source != "rpki" || f.Evidence.Detail != "ROA AS45090 maxLength 24 (apnic)" ||
				!f.Evidence.Seen.Equal(time.Date(2025, 6, 15, 1, 0, 0, 0, time.UTC)) {
				t.Errorf("fact %+v", f)
			}
		}
	}
	slices.Sort(got)
	want := []string{"1.116.0.0/15", "1.12.0.0/14", "103.95.224.0/22", "2402:4e00::/32", "240d:c000:f1e0::/47", "42.187.128.0/17"}
	if !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, want %v", got, want)
	}
	data := read(t, current)
	sum := sha256.Sum256(data)
	p := src.Provenance()
	if len(p) != 1 || p[0].SHA256 != hex.EncodeToString(sum[:]) || p[0].Input != current || !strings.Contains(p[0].Note, "14 VRPs") {
		t.Fatalf("provenance %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"html":        {"<html>502</html>", `not a JSON VRP export (starts with "<html>502</html>")`},
		"csv":         {"ASN,IP Prefix,Max Length,Trust Anchor\nAS196615,2001:7fb:fd03::/48,48,ripe\n", "not a JSON VRP export"},
		"array":       {`[{"asn": 1}]`, `not a JSON VRP export (starts with "[{\"asn\": 1}]")`},
		"not-object":  {`{"roas": [`, "line 1 column 11: unexpected end of the export"},
		"no-roas":     {`{"metadata": {}, "vrps": []}`, `no "roas" list`},
		"empty":       {`{"metadata": {}, "roas": []}`, `"roas" is empty`},
		"roas-object": {`{"roas": {}}`, `"roas" is not a list`},
		"asn":         {`{"roas": [{"asn": "ASx", "prefix": "1.0.0.0/24", "maxLength": 24}]}`, `roas[0]: invalid asn "ASx"`},
		"asn-range":   {`{"roas": [{"asn": 4294967296, "prefix": "1.0.0.0/24", "maxLength": 24}]}`, "roas[0]: invalid asn 4294967296"},
		"no-asn":      {`{"roas": [{"prefix": "1.0.0.0/24", "maxLength": 24}]}`, `roas[0]: missing "asn"`},
		"no-maxlen":   {`{"roas": [{"asn": 1, "prefix": "1.0.0.0/24"}]}`, `roas[0]: want "asn", "prefix" and "maxLength"`},
		"host-bits":   {`{"roas": [{"asn": 1, "prefix": "1.0.0.0/24", "maxLength": 24}, {"asn": 1, "prefix": "1.0.0.1/24", "maxLength": 24}]}`, `roas[1]: invalid prefix "1.0.0.1/24": host bits set`},
		"maxlen":      {`{"roas": [{"asn": 1, "prefix": "1.0.0.0/24", "maxLength": 23}]}`, "roas[0]: maxLength 23 outside 24-32 for 1.0.0.0/24"},
		"maxlen-v6":   {`{"roas": [{"asn": 1, "prefix": "2001:db8::/32", "maxLength": 129}]}`, "outside 32-128"},
		"type":        {"{\n\"roas\": [\n{\"asn\": 1, \"prefix\": 5, \"maxLength\": 24}]}", "line 3 column"},
		"truncated":   {`{"roas": [{"asn": 1, "prefix": "1.0.0.0/24", "maxLength": 24},`, "roas[1]: unexpected end of the export (truncated?)"},
		"trailing":    {`{"roas": [{"asn": 1, "prefix": "1.0.0.0/24", "maxLength": 24}]} {}`, "data after the end"},
		"metadata":    {`{"metadata": [1], "roas": [{"asn": 1, "prefix": "1.0.0.0/24", "maxLength": 24}]}`, "metadata: "},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no path or URL accepted")
	}
	if _, err := New(Options{Path: "testdata/PROVENANCE.md"}); err == nil || !strings.HasPrefix(err.Error(), "rpki testdata/PROVENANCE.md: not a JSON VRP export") {
		t.Errorf("markdown accepted: %v", err)
	}
	if _, err := New(Options{Path: current, Client: &fetch.Client{MaxBytes: 64}}); err == nil || !strings.Contains(err.Error(), "larger than the 64-byte limit") {
		t.Errorf("oversized: %v", err)
	}
}

func TestURL(t *testing.T) {
	data := read(t, "testdata/routinator-test-output-100.json")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/json" || !strings.HasPrefix(r.UserAgent(), "asfence") {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	src, err := New(Options{URL: srv.URL + "/json"})
	if err != nil {
		t.Fatal(err)
	}
	if src.Provenance() != nil {
		t.Error("provenance before fetching")
	}
	for range 2 {
		f, err := src.Resolve(context.Background(), &asn.Target{Name: "x"}, []uint32{1234})
		if err != nil || len(f.Prefixes) != 2 || f.Prefixes[0].Evidence.Detail != "ROA AS1234 maxLength 24 (N/A)" {
			t.Fatalf("%+v %v", f, err)
		}
	}
	if hits.Load() != 1 || len(src.Provenance()) != 1 {
		t.Errorf("%d fetches, provenance %+v", hits.Load(), src.Provenance())
	}
}

func TestURLFailures(t *testing.T) {
	data := read(t, current)
	for name, c := range map[string]struct {
		h      http.HandlerFunc
		client *fetch.Client
		want   string
	}{
		// Routinator answers 503 until its first validation run is done.
		"503":       {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, want: "HTTP 503 Service Unavailable"},
		"404":       {h: http.NotFound, want: "not found (HTTP 404)"},
		"429":       {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }, want: "rate limited (HTTP 429)"},
		"garbage":   {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("\x00\x01binary")) }, want: "not a JSON VRP export"},
		"truncated": {h: func(w http.ResponseWriter, r *http.Request) { w.Write(data[:len(data)-200]) }, want: "unexpected end of the export"},
		"oversized": {h: func(w http.ResponseWriter, r *http.Request) { w.Write(data) }, client: &fetch.Client{MaxBytes: 1000}, want: "larger than the 1000-byte limit"},
		"slow":      {h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, client: &fetch.Client{Timeout: 200 * time.Millisecond}, want: "no complete answer"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			src, err := New(Options{URL: srv.URL + "/json", Client: c.client})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Resolve(context.Background(), &asn.Target{Name: "x"}, []uint32{45090})
			if err == nil || !strings.HasPrefix(err.Error(), "rpki "+srv.URL+"/json: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestEngineIncomplete: a validator that is not ready is listed as
// incomplete and the other sources' facts stay.
func TestEngineIncomplete(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	dead, err := New(Options{URL: srv.URL + "/json"})
	if err != nil {
		t.Fatal(err)
	}
	ipv, err := files.NewIPverse(files.Options{Path: "testdata/AS133478.aggregated.75bcc2b1.json"})
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	snap, err := (&asn.Engine{Sources: []asn.Source{dead, ipv}}).Run(context.Background(), []asn.Target{tencent})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Failed(dead.Name(), "tencent") || !strings.Contains(snap.Incomplete[0].Error, "HTTP 503") {
		t.Fatalf("incomplete %+v", snap.Incomplete)
	}
	if n := len(snap.Target("tencent").Prefixes); n != 5 {
		t.Fatalf("%d prefixes from the ipverse file, want 5", n)
	}
}
