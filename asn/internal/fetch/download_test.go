package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// body is a document larger than any buffer on the way.
var body = bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDownloadStreamsToFile(t *testing.T) {
	var ims atomic.Value
	ims.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ims.Store(r.Header.Get("If-Modified-Since"))
		if r.Header.Get("User-Agent") != "test-agent (ops@example.net)" {
			http.Error(w, "say who you are", http.StatusForbidden)
			return
		}
		if v := r.Header.Get("If-Modified-Since"); v != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "cache", "table.gz")
	c := &Client{UserAgent: "test-agent (ops@example.net)"}
	d, err := c.Download(context.Background(), srv.URL, path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, body) || d.SHA256 != sum(body) || d.Data != nil || d.Input != srv.URL {
		t.Fatalf("file %d bytes, doc %+v", len(got), Doc{Input: d.Input, SHA256: d.SHA256, Time: d.Time})
	}
	if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
		t.Fatalf("partial file left behind: %v", err)
	}
	// A second download asks whether it changed; 304 keeps the file.
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(path, old, old)
	d, err = c.Download(context.Background(), srv.URL, path)
	if err != nil || ims.Load().(string) == "" {
		t.Fatalf("conditional download: %v (If-Modified-Since %q)", err, ims.Load())
	}
	if st, _ := os.Stat(path); time.Since(st.ModTime()) > time.Minute || st.Size() != int64(len(body)) {
		t.Fatalf("304 did not keep and refresh the file: %v, %d bytes", st.ModTime(), st.Size())
	}
	if _, err := (&Client{}).Download(context.Background(), srv.URL, filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "say who you are") {
		t.Fatalf("refused download: %v", err)
	}
}

// A download that fails part-way (too large, cut off, stalled) leaves the
// previous copy as it was and says what happened.
func TestDownloadFailuresKeepOldCopy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(body)
		case "/cut":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
			// The handler returns: the server closes a short body.
		case "/stall":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path string
		c    *Client
		want string
	}{
		{"/big", &Client{MaxBytes: 1 << 20}, "larger than the 1048576-byte limit"},
		{"/cut", &Client{}, "after 2097152 bytes"},
		{"/stall", &Client{Timeout: 300 * time.Millisecond}, "no data for 300ms"},
	} {
		path := filepath.Join(t.TempDir(), "table")
		os.WriteFile(path, []byte("old copy"), 0o600)
		old := time.Now().Add(-2 * time.Hour)
		os.Chtimes(path, old, old)
		_, err := tc.c.Download(context.Background(), srv.URL+tc.path, path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.path, err, tc.want)
		}
		if b, _ := os.ReadFile(path); string(b) != "old copy" {
			t.Errorf("%s: old copy replaced by %d bytes", tc.path, len(b))
		}
		if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
			t.Errorf("%s: partial file left behind", tc.path)
		}
	}
}

// Large-file mode: the document reaches Open as a stream from disk, the
// checksum covers all of it even when Open stops early, a value that comes
// with an error is returned with it (and not read again until the file
// changes), and a URL's copy is reused while fresh.
func TestCachedLargeFile(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	var opens int
	open := func(_ context.Context, r io.Reader, d Doc) (int, error) {
		opens++
		buf := make([]byte, 1000)
		n, err := io.ReadFull(r, buf) // reads only the start
		return n, err
	}
	c := &Cached[int]{URL: srv.URL, CacheFile: filepath.Join(dir, "t.gz"), Open: open}
	for range 2 {
		v, d, err := c.Get(context.Background())
		if err != nil || v != 1000 || d.SHA256 != sum(body) || d.Input != srv.URL {
			t.Fatalf("%d %+v %v", v, d.SHA256, err)
		}
	}
	if hits.Load() != 1 || opens != 1 {
		t.Fatalf("%d downloads, %d opens; want 1 and 1", hits.Load(), opens)
	}
	// A new Cached (the next run) reuses the fresh copy on disk.
	c2 := &Cached[int]{URL: srv.URL, CacheFile: filepath.Join(dir, "t.gz"), Open: open}
	if _, _, err := c2.Get(context.Background()); err != nil || hits.Load() != 1 {
		t.Fatalf("next run: %v, %d downloads", err, hits.Load())
	}

	// A local path whose reading fails part-way.
	path := filepath.Join(dir, "local")
	os.WriteFile(path, []byte("short"), 0o600)
	c3 := &Cached[int]{Path: path, Open: open}
	for range 2 {
		v, d, err := c3.Get(context.Background())
		if err == nil || v != 5 || d.Input != path || d.SHA256 != sum([]byte("short")) {
			t.Fatalf("partial read: %d %+v %v", v, d, err)
		}
		if opens != 3 {
			t.Fatalf("%d opens, want the broken file read once", opens)
		}
	}
	os.WriteFile(path, []byte("longer than a thousand bytes? no"), 0o600)
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
	if v, _, err := c3.Get(context.Background()); err == nil || v != 32 || opens != 4 {
		t.Fatalf("changed file: %d %v, %d opens", v, err, opens)
	}
	if _, _, err := (&Cached[int]{Path: filepath.Join(dir, "missing"), Open: open}).Get(context.Background()); err == nil {
		t.Fatal("missing file: no error")
	}
}
