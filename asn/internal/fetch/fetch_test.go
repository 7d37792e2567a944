package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestErrorDetail(t *testing.T) {
	for body, want := range map[string]string{
		`{"errorCode":404,"title":"Not Found","description":["no such autnum"]}`: "Not Found; no such autnum",
		`{"meta":{"error":"Unknown field"},"data":[]}`:                           "Unknown field",
		`{"messages":[["error","bad resource"]],"status":"error"}`:               "error: bad resource",
		`{"message":"Request was throttled."}`:                                   "Request was throttled.",
		"<html>\n<body>Bad Gateway</body>":                                       `"<html>"`,
		"":                                                                       "",
	} {
		if got := errorDetail([]byte(body)); got != want {
			t.Errorf("errorDetail(%q) = %q, want %q", body, got, want)
		}
	}
	if got := errorDetail([]byte(strings.Repeat("x", 1000))); len(got) > 210 {
		t.Errorf("detail not clipped: %d bytes", len(got))
	}
}

func TestDecodeJSONPosition(t *testing.T) {
	var v struct{ A int }
	err := DecodeJSON([]byte("{\n  \"A\": \"x\"\n}"), &v)
	if err == nil || !strings.HasPrefix(err.Error(), "line 2 column ") {
		t.Errorf("type error: %v", err)
	}
	err = DecodeJSON([]byte("{\n\n  \"A\": 1,\n}"), &v)
	if err == nil || !strings.HasPrefix(err.Error(), "line 4 column 1:") {
		t.Errorf("syntax error: %v", err)
	}
	err = DecodeJSON([]byte("Service Unavailable"), &v)
	if err == nil || !strings.HasPrefix(err.Error(), `answer is not JSON (starts with "Service Unavailable")`) {
		t.Errorf("not JSON: %v", err)
	}
}

func TestGetHeadersAndRedirects(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		got = r.Header.Clone()
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := &Client{Header: http.Header{"X-Test": {"1"}}}
	b, err := c.Get(context.Background(), srv.URL+"/old", "application/json")
	if err != nil || string(b) != "ok" {
		t.Fatalf("%q %v", b, err)
	}
	if got.Get("User-Agent") != UserAgent || got.Get("Accept") != "application/json" || got.Get("X-Test") != "1" {
		t.Errorf("headers after redirect: %v", got)
	}
}

func TestGetCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Client{}).Get(ctx, srv.URL, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestEachASN(t *testing.T) {
	var running, peak atomic.Int32
	asns := []uint32{1, 2, 3, 4, 5, 6, 7, 8}
	err := EachASN(context.Background(), "lookup", asns, 3, func(ctx context.Context, a uint32) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer running.Add(-1)
		switch a {
		case 3, 6:
			return errors.New("HTTP 503")
		case 7:
			return errors.New("timeout")
		}
		return nil
	})
	if err == nil || err.Error() != "lookup AS3, AS6: HTTP 503; lookup AS7: timeout" {
		t.Errorf("joined error %v", err)
	}
	if peak.Load() > 3 {
		t.Errorf("%d calls at once, limit 3", peak.Load())
	}
	if err := EachASN(context.Background(), "lookup", asns, 2, func(context.Context, uint32) error { return nil }); err != nil {
		t.Errorf("no failures: %v", err)
	}
}

func TestCachedFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("one"), 0o600)
	var parses int
	c := &Cached[string]{Path: path, Parse: func(d Doc) (string, error) { parses++; return string(d.Data), nil }}
	for range 2 {
		v, _, err := c.Get(context.Background())
		if err != nil || v != "one" {
			t.Fatalf("%q %v", v, err)
		}
	}
	os.WriteFile(path, []byte("two"), 0o600)
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
	v, d, err := c.Get(context.Background())
	if err != nil || v != "two" || parses != 2 || len(d.SHA256) != 64 {
		t.Fatalf("after change: %q %v, %d parses", v, err, parses)
	}
}

func TestCachedURLMaxAge(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, hits.Add(1))
	}))
	defer srv.Close()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Cached[string]{URL: srv.URL, MaxAge: time.Hour, Now: func() time.Time { return now },
		Parse: func(d Doc) (string, error) {
			if string(d.Data) == "3" {
				return "", errors.New("bad")
			}
			return string(d.Data), nil
		}}
	get := func() (string, error) { v, _, err := c.Get(context.Background()); return v, err }
	if v, _ := get(); v != "1" {
		t.Fatalf("first %q", v)
	}
	now = now.Add(59 * time.Minute)
	if v, _ := get(); v != "1" {
		t.Fatalf("within max age %q", v)
	}
	now = now.Add(2 * time.Minute)
	if v, _ := get(); v != "2" {
		t.Fatalf("after max age %q", v)
	}
	now = now.Add(2 * time.Hour)
	if _, err := get(); err == nil {
		t.Fatal("a bad reload kept the stale copy")
	}
	if _, _, ok := c.Loaded(); ok {
		t.Error("stale copy still loaded after a failed reload")
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{"https://rdap.org/": "https://rdap.org", "http://127.0.0.1:8080": "http://127.0.0.1:8080"} {
		if got, err := BaseURL(in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"rdap.org", "ftp://x", ""} {
		if _, err := BaseURL(in); err == nil {
			t.Errorf("BaseURL(%q): no error", in)
		}
	}
}
