package peeringdb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// pdb is a PeeringDB API stand-in: /api/org and /api/net over the testdata
// objects, with PeeringDB's filter semantics for the two filters used
// (name__contains: case-insensitive substring; org_id__in: id list).
type pdb struct {
	*httptest.Server
	requests atomic.Int32
	auth     atomic.Value
	ua       atomic.Value
}

func newPDB(t *testing.T) *pdb {
	t.Helper()
	load := func(name string) []map[string]any {
		b, err := os.ReadFile(filepath.Join("testdata/constructed", name))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Data []map[string]any }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Data
	}
	orgs, nets := load("org.json"), load("net.json")
	p := &pdb{}
	reply := func(w http.ResponseWriter, data []map[string]any) {
		if data == nil {
			data = []map[string]any{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data, "meta": map[string]any{}})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/org", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.auth.Store(r.Header.Get("Authorization"))
		p.ua.Store(r.UserAgent())
		q := strings.ToLower(r.URL.Query().Get("name__contains"))
		var out []map[string]any
		for _, o := range orgs {
			if strings.Contains(strings.ToLower(o["name"].(string)), q) {
				out = append(out, o)
			}
		}
		reply(w, out)
	})
	mux.HandleFunc("GET /api/net", func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		var ids []float64
		for _, s := range strings.Split(r.URL.Query().Get("org_id__in"), ",") {
			id, err := strconv.Atoi(s)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"meta": {"error": "invalid org_id__in %q"}, "data": []}`, s)
				return
			}
			ids = append(ids, float64(id))
		}
		var out []map[string]any
		for _, n := range nets {
			if slices.Contains(ids, n["org_id"].(float64)) {
				out = append(out, n)
			}
		}
		reply(w, out)
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func discovered(t *testing.T, c *Client, tg asn.Target) ([]uint32, []asn.ASNFact) {
	t.Helper()
	facts, err := c.Discover(context.Background(), &tg)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, f := range facts {
		got = append(got, f.ASN)
	}
	slices.Sort(got)
	return got, facts
}

func TestDiscoverBuiltinTargets(t *testing.T) {
	p := newPDB(t)
	when := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	c := newClient(t, Options{BaseURL: p.URL, Now: func() time.Time { return when }})
	tencent, _ := asn.BuiltinTarget("tencent")
	got, facts := discovered(t, c, tencent)
	// Not 9390 (network deleted), not 64500 ("Tencentric": a substring,
	// not a word).
	if want := []uint32{45090, 132203, 132591, 133478}; !slices.Equal(got, want) {
		t.Fatalf("tencent: %v, want %v", got, want)
	}
	for _, f := range facts {
		if f.ASN == 132203 {
			want := `network "Tencent Global" (net 80002, Content) of organisation "Shenzhen Tencent Computer Systems Company Limited" (org 90001)`
			if f.Evidence.Detail != want || f.Evidence.Source != "peeringdb" || !f.Evidence.Seen.Equal(when) || f.Name != "Tencent Global" {
				t.Errorf("fact %+v", f)
			}
		}
	}
	bytedance, _ := asn.BuiltinTarget("bytedance")
	got, _ = discovered(t, c, bytedance)
	// Not 64501 ("Tiktokers Media").
	if want := []uint32{137718, 138699, 396986, 398175}; !slices.Equal(got, want) {
		t.Fatalf("bytedance: %v, want %v", got, want)
	}
	if ua, _ := p.ua.Load().(string); !strings.HasPrefix(ua, "asfence") {
		t.Errorf("User-Agent %q", ua)
	}
	if a, _ := p.auth.Load().(string); a != "" {
		t.Errorf("Authorization %q sent without a key", a)
	}
}

func TestWordBoundary(t *testing.T) {
	p := newPDB(t)
	c := newClient(t, Options{BaseURL: p.URL})
	got, _ := discovered(t, c, asn.Target{Name: "lark", Names: []string{"Lark"}})
	// name__contains=Lark also returns "CLARK Wireless LLC" (AS64502).
	if !slices.Equal(got, []uint32{398175}) {
		t.Fatalf("%v, want [398175]", got)
	}
	got, _ = discovered(t, c, asn.Target{Name: "none", ASNs: []asn.SeedASN{{ASN: 1}}})
	if got != nil || p.requests.Load() != 2 {
		t.Fatalf("a target without names: %v after %d requests", got, p.requests.Load())
	}
}

func TestAPIKey(t *testing.T) {
	p := newPDB(t)
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("abcDEF.0123456789\n"), 0o600)
	c := newClient(t, Options{BaseURL: p.URL, APIKeyFile: key})
	discovered(t, c, asn.Target{Name: "lark", Names: []string{"Lark"}})
	if a, _ := p.auth.Load().(string); a != "Api-Key abcDEF.0123456789" {
		t.Errorf("Authorization %q", a)
	}
	for content, want := range map[string]string{"": "want one key on one line", "a b\n": "want one key on one line"} {
		os.WriteFile(key, []byte(content), 0o600)
		if _, err := New(Options{BaseURL: p.URL, APIKeyFile: key}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("key %q: %v", content, err)
		}
	}
	if _, err := New(Options{APIKeyFile: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "peeringdb: api key: ") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestFailures(t *testing.T) {
	good := `{"data": [{"id": 90014, "name": "Lark Enterprise Applications Inc.", "status": "ok"}], "meta": {}}`
	for name, c := range map[string]struct {
		h      http.HandlerFunc
		client *fetch.Client
		key    bool
		want   string
	}{
		"429": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"message": "Request was throttled. Expected available in 60 seconds."}`))
		}, want: "rate limited (HTTP 429), retry after 60"},
		"429-hint": {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) },
			want: "anonymous queries have a low limit: set api_key_file"},
		"429-with-key": {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) },
			key: true, want: "rate limited (HTTP 429)"},
		"500": {h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write([]byte(`{"meta": {"error": "Internal error"}}`))
		}, want: "HTTP 500 Internal Server Error: Internal error"},
		"404": {h: http.NotFound, want: "not found (HTTP 404)"},
		"meta": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"data": [], "meta": {"error": "Unknown field"}}`))
		}, want: "error: Unknown field"},
		"no-data": {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"results": []}`)) }, want: `answer has no "data" list`},
		"type":    {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"data": [{"id": "x"}]}`)) }, want: "line 1 column"},
		"no-id":   {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"data": [{"name": "Lark"}]}`)) }, want: `organisation "Lark" has no id`},
		"garbage": {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }, want: "answer is not JSON"},
		"oversized": {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(good)) },
			client: &fetch.Client{MaxBytes: 50}, want: "larger than the 50-byte limit"},
		"slow": {h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			client: &fetch.Client{Timeout: 200 * time.Millisecond}, want: "no complete answer"},
		"bad-asn": {h: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/org" {
				w.Write([]byte(good))
				return
			}
			w.Write([]byte(`{"data": [{"id": 1, "org_id": 90014, "asn": 0, "name": "Lark", "status": "ok"}]}`))
		}, want: `net org_id__in=90014: `},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			o := Options{BaseURL: srv.URL, Client: c.client}
			if c.key {
				o.APIKeyFile = filepath.Join(t.TempDir(), "key")
				os.WriteFile(o.APIKeyFile, []byte("k"), 0o600)
			}
			cl := newClient(t, o)
			_, err := cl.Discover(context.Background(), &asn.Target{Name: "lark", Names: []string{"Lark"}})
			if err == nil || !strings.HasPrefix(err.Error(), "peeringdb "+srv.URL+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant %q", err, c.want)
			}
			if name == "429-with-key" && strings.Contains(err.Error(), "api_key_file") {
				t.Errorf("hint about a key although one is set: %v", err)
			}
		})
	}
}

// TestEngineIncomplete: PeeringDB rate-limiting is listed as incomplete and
// the other sources' facts stay.
func TestEngineIncomplete(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c := newClient(t, Options{BaseURL: srv.URL})
	ipv, err := files.NewIPverse(files.Options{Path: "testdata/AS396986.aggregated.0131446c.json"})
	if err != nil {
		t.Fatal(err)
	}
	bytedance, _ := asn.BuiltinTarget("bytedance")
	snap, err := (&asn.Engine{Sources: []asn.Source{c, ipv}}).Run(context.Background(), []asn.Target{bytedance})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Failed(c.Name(), "bytedance") || !strings.Contains(snap.Incomplete[0].Error, "rate limited (HTTP 429)") {
		t.Fatalf("incomplete %+v", snap.Incomplete)
	}
	if n := len(snap.Target("bytedance").Prefixes); n != 62 {
		t.Fatalf("%d prefixes from the ipverse file, want 62", n)
	}
}
