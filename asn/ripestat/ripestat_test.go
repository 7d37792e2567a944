package ripestat

import (
	"context"
	"fmt"
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

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stat serves /data/announced-prefixes/data.json like RIPEstat: the
// testdata answer for known ASNs, an empty list for the others.
type stat struct {
	*httptest.Server
	queries atomic.Value // last query string
	ua      atomic.Value
}

func newStat(t *testing.T) *stat {
	t.Helper()
	s := &stat{}
	empty := string(read(t, "testdata/constructed/announced-prefixes-AS398175.json"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /data/announced-prefixes/data.json", func(w http.ResponseWriter, r *http.Request) {
		s.queries.Store(r.URL.RawQuery)
		s.ua.Store(r.UserAgent())
		res := r.URL.Query().Get("resource")
		w.Header().Set("Content-Type", "application/json")
		if res == "AS211858" {
			w.Write(read(t, "testdata/announced-prefixes-AS211858.json"))
			return
		}
		if b, err := os.ReadFile("testdata/constructed/announced-prefixes-" + res + ".json"); err == nil {
			w.Write(b)
			return
		}
		fmt.Fprint(w, strings.Replace(empty, `"resource":"398175"`, fmt.Sprintf(`"resource":%q`, strings.TrimPrefix(res, "AS")), 1))
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, base string, c *fetch.Client) *Client {
	t.Helper()
	cl, err := New(Options{BaseURL: base, Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestParseRealAnswer(t *testing.T) {
	a, err := Parse(read(t, "testdata/announced-prefixes-AS211858.json"), 211858)
	if err != nil {
		t.Fatal(err)
	}
	if a.Resource != "211858" || len(a.Prefixes) != 2 || a.Prefixes[0].Prefix.String() != "2a10:c704::/32" || a.Prefixes[1].Prefix.String() != "45.67.82.0/24" {
		t.Fatalf("%+v", a)
	}
	end := time.Date(2026, 6, 10, 16, 0, 0, 0, time.UTC)
	if !a.QueryEnd.Equal(end) || len(a.Prefixes[1].Periods) != 1 || !a.Prefixes[1].Periods[0][1].Equal(end) {
		t.Fatalf("times %+v", a)
	}
	// The older "2023-07-03 15:49:57" spelling is read too.
	if _, err := Parse([]byte(`{"status":"ok","data":{"resource":"3333","prefixes":[{"prefix":"193.0.0.0/21","timelines":[{"starttime":"2023-07-03 15:49:57","endtime":"2025-06-16 16:00:00"}]}]}}`), 3333); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	s := newStat(t)
	c := newClient(t, s.URL, nil)
	tencent, _ := asn.BuiltinTarget("tencent")
	facts, err := c.Resolve(context.Background(), &tencent, []uint32{133478, 9390})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range facts.Prefixes {
		got = append(got, f.Prefix.String())
		if f.Origin != 133478 || f.Evidence.Source != "ripestat" ||
			f.Evidence.Detail != "announced by AS133478, seen by RIS 2026-05-27 16:00 to 2026-06-10 16:00 UTC" ||
			!f.Evidence.Seen.Equal(time.Date(2026, 6, 10, 16, 0, 0, 0, time.UTC)) {
			t.Errorf("fact %+v", f)
		}
	}
	slices.Sort(got)
	want := []string{"103.95.224.0/22", "142.86.252.0/24", "240d:c000:f1e0::/47", "240d:c000:f1e3::/48", "240d:c000:f1ef::/48"}
	if !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, want %v (AS9390 announces none: an empty answer)", got, want)
	}
	q, _ := s.queries.Load().(string)
	if !strings.Contains(q, "sourceapp=asfence") || !strings.Contains(q, "resource=AS") {
		t.Errorf("query %q", q)
	}
	if ua, _ := s.ua.Load().(string); !strings.HasPrefix(ua, "asfence") {
		t.Errorf("User-Agent %q", ua)
	}
}

func TestFailures(t *testing.T) {
	good := read(t, "testdata/announced-prefixes-AS211858.json")
	replace := func(old, new string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Replace(string(good), old, new, 1)))
		}
	}
	for name, c := range map[string]struct {
		h      http.HandlerFunc
		client *fetch.Client
		want   string
	}{
		"400": {h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write(read(t, "testdata/constructed/error-400.json"))
		}, want: "HTTP 400 Bad Request: error: Error: please provide a valid ASN as resource."},
		"status-error": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write(read(t, "testdata/constructed/error-400.json"))
		}, want: `status "error" (error: Error: please provide a valid ASN as resource.)`},
		"500":     {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, want: "HTTP 500 Internal Server Error"},
		"404":     {h: http.NotFound, want: "not found (HTTP 404)"},
		"429":     {h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }, want: "rate limited (HTTP 429)"},
		"garbage": {h: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("Bad Gateway\n")) }, want: `answer is not JSON (starts with "Bad Gateway")`},
		"syntax":  {h: replace(`"status":"ok",`, `"status":"ok"`), want: "line 1 column"},
		"no-status": {h: replace(`"status":"ok",`, ``),
			want: `answer has no "status"`},
		"no-prefixes": {h: replace(`"prefixes":`, `"routes":`), want: `answer has no "data.prefixes" list`},
		"other-call": {h: replace(`"data_call_name":"announced-prefixes"`, `"data_call_name":"as-overview"`),
			want: `answer is from data call "as-overview"`},
		"other-resource": {h: replace(`"resource":"211858"`, `"resource":"3333"`), want: `answer is about resource "3333", not AS211858`},
		"host-bits": {h: replace(`45.67.82.0/24`, `45.67.82.1/24`),
			want: `data.prefixes[1]: invalid prefix "45.67.82.1/24": host bits set`},
		"bad-time": {h: replace(`"endtime":"2026-06-10T16:00:00"`, `"endtime":"yesterday"`),
			want: `data.prefixes[0].timelines[0]: time "yesterday" is not ISO 8601`},
		"wrong-type": {h: replace(`"prefixes":[`, `"prefixes":"none","x":[`), want: "line 1 column"},
		"oversized": {h: func(w http.ResponseWriter, r *http.Request) { w.Write(good) },
			client: &fetch.Client{MaxBytes: 512}, want: "larger than the 512-byte limit"},
		"slow": {h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			client: &fetch.Client{Timeout: 200 * time.Millisecond}, want: "no complete answer"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			cl := newClient(t, srv.URL, c.client)
			_, err := cl.Resolve(context.Background(), &asn.Target{Name: "x"}, []uint32{211858})
			prefix := fmt.Sprintf("ripestat %s: announced-prefixes AS211858: ", srv.URL)
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant %q ... %q", err, prefix, c.want)
			}
		})
	}
}

// TestEngineIncomplete: RIPEstat failing for one of the target's ASNs makes
// the source incomplete (never a silently smaller set) and the other
// sources' facts stay.
func TestEngineIncomplete(t *testing.T) {
	s := newStat(t)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("resource") == "AS45090" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.Config.Handler.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	c := newClient(t, flaky.URL, nil)
	ipv, err := files.NewIPverse(files.Options{Path: "testdata/AS45090.aggregated.04262355.json"})
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	eng := &asn.Engine{Sources: []asn.Source{c, ipv}}
	snap, err := eng.Run(context.Background(), []asn.Target{tencent})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Failed(c.Name(), "tencent") || !strings.Contains(snap.Incomplete[0].Error, "announced-prefixes AS45090: HTTP 503") {
		t.Fatalf("incomplete %+v", snap.Incomplete)
	}
	// What RIPEstat did answer (the other ASNs) is kept; nothing is claimed
	// for the ASN whose query failed.
	tr := snap.Target("tencent")
	var fromFile, fromStat int
	for _, p := range tr.Prefixes {
		for _, ev := range p.Evidence {
			switch ev.Source {
			case "file:ipverse":
				fromFile++
			case "ripestat":
				fromStat++
				if strings.Contains(ev.Detail, "AS45090") {
					t.Fatalf("%s: RIPEstat evidence for the failed AS45090 query: %s", p.Prefix, ev.Detail)
				}
			}
		}
	}
	if fromFile != 81 || fromStat == 0 {
		t.Fatalf("%d prefixes from the ipverse file (want 81), %d from RIPEstat's answered queries (want some)", fromFile, fromStat)
	}
}
