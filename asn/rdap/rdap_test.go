package rdap

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/internal/fetch"
)

var when = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rir is an RDAP server in the style of an RIR's: /autnum/{n} from
// testdata, RFC 9083 error objects otherwise.
type rir struct {
	*httptest.Server
	hits atomic.Int32
	ua   atomic.Value
}

func newRIR(t *testing.T) *rir {
	t.Helper()
	r := &rir{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /autnum/{n}", func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.ua.Store(req.UserAgent())
		n := req.PathValue("n")
		var body []byte
		switch n {
		case "4134":
			body = read(t, "testdata/apnic-autnum-AS4134.json")
		case "15169":
			body = read(t, "testdata/arin-autnum-AS15169.json")
		default:
			b, err := os.ReadFile(filepath.Join("testdata/constructed", "autnum-"+n+".json"))
			if err != nil {
				w.Header().Set("Content-Type", "application/rdap+json")
				w.WriteHeader(http.StatusNotFound)
				w.Write(read(t, "testdata/error-404.json"))
				return
			}
			body = b
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write(body)
	})
	r.Server = httptest.NewServer(mux)
	t.Cleanup(r.Close)
	return r
}

// bootstrap answers every query with a redirect to the RIR, as rdap.org does.
func bootstrap(t *testing.T, to string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, to+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func client(t *testing.T, base string, c *fetch.Client) *Client {
	t.Helper()
	cl, err := New(Options{BaseURL: base, Client: c, Now: func() time.Time { return when }})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestParseRealAnswers(t *testing.T) {
	a, err := Parse(read(t, "testdata/arin-autnum-AS15169.json"), 15169)
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "Google LLC" || a.HolderFrom != "registrant" || a.Name != "GOOGLE" || strings.Join(a.Status, ",") != "active" {
		t.Errorf("ARIN AS15169: %+v", a)
	}
	// APNIC names no registrant for AS4134: the description is used, and
	// says so.
	a, err = Parse(read(t, "testdata/apnic-autnum-AS4134.json"), 4134)
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "No.31,Jin-rong Street" || a.HolderFrom != "remarks" || a.Name != "CHINANET-BACKBONE" {
		t.Errorf("APNIC AS4134: %+v", a)
	}
	if d := a.describe(); d != `holder "No.31,Jin-rong Street" (from the description), name CHINANET-BACKBONE, status active` {
		t.Errorf("describe: %s", d)
	}
}

func TestResolveThroughBootstrapRedirect(t *testing.T) {
	r := newRIR(t)
	boot, bootHits := bootstrap(t, r.URL)
	c := client(t, boot.URL+"/", nil)
	tencent, _ := asn.BuiltinTarget("tencent")
	facts, err := c.Resolve(context.Background(), &tencent, []uint32{45090, 132203, 9390, 4134})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]asn.ASNFact{}
	for _, f := range facts.ASNs {
		got[f.ASN] = f
	}
	if _, ok := got[9390]; ok || len(got) != 3 {
		t.Fatalf("facts for %v: AS9390 (404, no such object) must give none", got)
	}
	want := map[uint32]string{
		45090:  `holder "Shenzhen Tencent Computer Systems Company Limited" (from the description), name TENCENT-NET-AP, status active`,
		132203: `holder "Shenzhen Tencent Computer Systems Company Limited", name TENCENT-NET-AP-CN, status active`,
		4134:   `holder "No.31,Jin-rong Street" (from the description), name CHINANET-BACKBONE, status active; holder does not match target names`,
	}
	for n, d := range want {
		f := got[n]
		if f.Evidence.Detail != d || f.Evidence.Source != "rdap" || !f.Evidence.Seen.Equal(when) {
			t.Errorf("AS%d evidence %+v, want detail %s", n, f.Evidence, d)
		}
	}
	if got[132203].Name != "TENCENT-NET-AP-CN" {
		t.Errorf("name %q", got[132203].Name)
	}
	if bootHits.Load() != 4 || r.hits.Load() != 4 {
		t.Errorf("bootstrap %d, RIR %d requests; want 4 and 4", bootHits.Load(), r.hits.Load())
	}
	if ua, _ := r.ua.Load().(string); !strings.HasPrefix(ua, "asfence") {
		t.Errorf("User-Agent after redirect %q", ua)
	}
}

func TestFailures(t *testing.T) {
	good := read(t, "testdata/constructed/autnum-45090.json")
	for name, c := range map[string]struct {
		h      http.HandlerFunc
		client *fetch.Client
		want   string
	}{
		"500": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/rdap+json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(read(t, "testdata/error-500.json"))
		}, want: "HTTP 500 Internal Server Error: Internal Server Error; The database is unavailable."},
		"429": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}, want: "rate limited (HTTP 429), retry after 30"},
		"html": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html><body>Service Unavailable</body></html>"))
		}, want: `answer is not JSON (starts with "<html><body>Service Unavailable</body></html>")`},
		"truncated": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write(good[:len(good)/2])
		}, want: "unexpected end of JSON input"},
		"domain": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"objectClassName":"domain","ldhName":"example.com"}`))
		}, want: `answer is an RDAP "domain" object, not an autnum`},
		"no-class": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"handle":"AS45090","name":"TENCENT-NET-AP"}`))
		}, want: `answer has no "objectClassName"`},
		"other-asn": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write(read(t, "testdata/apnic-autnum-AS4134.json"))
		}, want: "answer is about AS4134-AS4134, not AS45090"},
		"type": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"objectClassName":"autnum","startAutnum":"45090"}`))
		}, want: "line 1 column"},
		"vcard": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"objectClassName":"autnum","startAutnum":45090,"endAutnum":45090,"entities":[{"handle":"X","roles":["registrant"],"vcardArray":{"fn":"Tencent"}}]}`))
		}, want: `registrant entity X: vcardArray is not ["vcard", [properties]]`},
		"oversized": {h: func(w http.ResponseWriter, r *http.Request) { w.Write(good) },
			client: &fetch.Client{MaxBytes: 100}, want: "larger than the 100-byte limit"},
		"slow": {h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			client: &fetch.Client{Timeout: 200 * time.Millisecond}, want: "no complete answer"},
		"redirect-loop": {h: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		}, want: "stopped after 5 redirects"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			cl := client(t, srv.URL, c.client)
			tencent, _ := asn.BuiltinTarget("tencent")
			_, err := cl.Resolve(context.Background(), &tencent, []uint32{45090})
			prefix := fmt.Sprintf("rdap %s: autnum AS45090: ", srv.URL)
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant %q ... %q", err, prefix, c.want)
			}
		})
	}
}

func TestNewRejectsBadBase(t *testing.T) {
	if _, err := New(Options{BaseURL: "rdap.org"}); err == nil {
		t.Fatal("base without scheme accepted")
	}
}

// TestEngineIncomplete: a dead RDAP server is listed as incomplete and the
// other sources' facts are still in the snapshot.
func TestEngineIncomplete(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	dead := client(t, srv.URL, nil)
	ipv, err := files.NewIPverse(files.Options{Path: "testdata/AS45090.aggregated.04262355.json"})
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	eng := &asn.Engine{Sources: []asn.Source{dead, ipv}, Now: func() time.Time { return when }}
	snap, err := eng.Run(context.Background(), []asn.Target{tencent})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Failed(dead.Name(), "tencent") || !strings.Contains(snap.Incomplete[0].Error, "HTTP 502") {
		t.Fatalf("incomplete %+v", snap.Incomplete)
	}
	if tr := snap.Target("tencent"); len(tr.Prefixes) != 81 {
		t.Fatalf("%d prefixes from the ipverse file, want 81", len(tr.Prefixes))
	}
}
