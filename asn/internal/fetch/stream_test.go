package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const line = "inetnum: 192.0.2.0 - 192.0.2.255\n"

func gz(t *testing.T, parts ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range parts { // one gzip member each, as concatenated dumps are
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// `printf 'inetnum: 192.0.2.0 - 192.0.2.255\n' | xz -9`
var xzLine = []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21, 0x01, 0x1c, 0x00, 0x00, 0x00, 0x10, 0xcf, 0x58, 0xcc, 0xe0, 0x00, 0x20, 0x00, 0x1d, 0x5d, 0x00, 0x34, 0x9b, 0x88, 0xd4, 0xaa, 0x70, 0xfb, 0x46, 0xc3, 0xd3, 0xb2, 0xb7, 0x0c, 0x82, 0x9f, 0x41, 0x32, 0x1d, 0x33, 0x12, 0x78, 0x2d, 0xd9, 0x3e, 0xc9, 0x1d, 0xc7, 0x9b, 0x00, 0x00, 0x00, 0x00, 0x00, 0xaf, 0xfd, 0x87, 0x8b, 0xe4, 0x8a, 0x46, 0x32, 0x00, 0x01, 0x39, 0x21, 0xcf, 0x28, 0x6b, 0x62, 0x1f, 0xb6, 0xf3, 0x7d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a}

func TestDecompress(t *testing.T) {
	// `printf 'inetnum: 192.0.2.0 - 192.0.2.255\n' | bzip2 -9`
	bz := []byte{0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x91, 0x24, 0xd3, 0x56, 0x00, 0x00, 0x0d, 0xd9, 0x80, 0x00, 0x10, 0x40, 0x03, 0x72, 0x30, 0x02, 0x23, 0x06, 0x00, 0x20, 0x00, 0x31, 0x4c, 0x00, 0x13, 0x41, 0xa2, 0x36, 0xa6, 0x9a, 0x07, 0xa9, 0x26, 0x89, 0xcb, 0x40, 0x79, 0x6b, 0x87, 0xa0, 0xe2, 0x62, 0x87, 0x3b, 0xb5, 0xe4, 0x8f, 0xc5, 0xdc, 0x91, 0x4e, 0x14, 0x24, 0x24, 0x49, 0x34, 0xd5, 0x80}
	for _, tc := range []struct {
		name string
		in   []byte
		kind Compression
		want string
	}{
		{"plain", []byte(line), Plain, line},
		{"gzip", gz(t, line), Gzip, line},
		{"gzip members", gz(t, line, line), Gzip, line + line},
		{"bzip2", bz, Bzip2, line},
		{"xz", xzLine, XZ, line},
		{"empty", nil, Plain, ""},
	} {
		r, kind, err := Decompress(bytes.NewReader(tc.in))
		if err != nil || kind != tc.kind {
			t.Fatalf("%s: kind %q, %v", tc.name, kind, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"PK\x03\x04rest", "a zip archive"},
		{"\xfd7zXZ\x00rest", "xz: "},
		{"\x1f\x8b\x00", "gzip: "},
	} {
		if _, _, err := Decompress(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	// A cut gzip stream: the error comes while reading.
	full := gz(t, strings.Repeat(line, 1000))
	r, _, err := Decompress(bytes.NewReader(full[:len(full)/2]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut gzip: %v", err)
	}
}

func TestStream(t *testing.T) {
	body := strings.Repeat(line, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dump":
			w.Header().Set("Last-Modified", "Tue, 10 Nov 2026 02:00:00 GMT")
			io.WriteString(w, body)
		case "/cut":
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, body)
		default:
			http.Error(w, "no such file", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	var b bytes.Buffer
	d, err := (&Client{}).Stream(context.Background(), srv.URL+"/dump", &b)
	if err != nil || b.String() != body || d.Bytes != int64(len(body)) || len(d.SHA256) != 64 ||
		!d.LastModified.Equal(time.Date(2026, 11, 10, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("stream: %+v %v", d, err)
	}
	if _, err := (&Client{}).Stream(context.Background(), srv.URL+"/cut", io.Discard); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "after 3300 bytes") {
		t.Errorf("cut answer: %v", err)
	}
	if _, err := (&Client{MaxBytes: 100}).Stream(context.Background(), srv.URL+"/dump", io.Discard); err == nil || !strings.Contains(err.Error(), "100-byte limit") {
		t.Errorf("limit: %v", err)
	}
	var se *StatusError
	if _, err := (&Client{}).Stream(context.Background(), srv.URL+"/x", io.Discard); !errors.As(err, &se) || se.Code != 403 {
		t.Errorf("403: %v", err)
	}
}
