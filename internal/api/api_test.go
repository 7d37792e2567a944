package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/internal/store"
)

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.8.7": true, "::1": true, "[::1]": true, "localhost": true,
		"0.0.0.0": false, "192.0.2.1": false, "::": false, "example.net": false, "": false,
	} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v", host, got)
		}
	}
}

func TestClientReportsAnUnreachableDaemon(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := &Client{Base: BaseURL(addr)}
	_, err = c.Runs(context.Background(), store.ListOptions{Limit: 1})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Base != "http://"+addr {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	const tok = "s3cret-token-0123456789"
	s := &Server{token: tok}
	h := s.auth(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for header, want := range map[string]int{
		"Bearer " + tok:        http.StatusNoContent,
		"bearer " + tok:        http.StatusNoContent,
		"BEARER " + tok:        http.StatusNoContent,
		"bEaReR  " + tok + " ": http.StatusNoContent,
		"":                     http.StatusUnauthorized,
		"Bearer":               http.StatusUnauthorized,
		"Bearer" + tok:         http.StatusUnauthorized,
		"Basic " + tok:         http.StatusUnauthorized,
		"bearer " + tok + "x":  http.StatusUnauthorized,
		"bearer wrong":         http.StatusUnauthorized,
	} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/runs", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != want {
			t.Errorf("Authorization %q: %d, want %d: %s", header, w.Code, want, w.Body)
		}
		if want == http.StatusUnauthorized && !strings.Contains(w.Body.String(), "bearer token") {
			t.Errorf("Authorization %q: body %s", header, w.Body)
		}
	}
}

// serveTest serves s on a loopback port until the test ends.
func serveTest(t *testing.T, s *Server) string {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s.Addr()
}

// slowPost opens a connection and sends a POST whose body never comes:
// Content-Length 100 and one byte.
func slowPost(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", path); err != nil {
		t.Fatal(err)
	}
	return c
}

// cutOff reads until the server closes c, and returns what it answered
// (within a deadline that is far longer than the server's timeout).
func cutOff(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server did not close the slow connection: %v (read %q)", err, b)
	}
	return string(b)
}

func TestSlowClientIsCutOff(t *testing.T) {
	for _, tok := range []string{"", "s3cret-token-0123456789"} {
		s, err := New(nil, Options{Listen: "127.0.0.1:0", Token: tok, Limits: Limits{ReadTimeout: 300 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		addr := serveTest(t, s)
		// Without a token configured the handler waits for the body; with
		// one, the request is refused and the server waits to drain it.
		got := cutOff(t, slowPost(t, addr, "/api/v1/runs"))
		if tok == "" && !strings.Contains(got, "400 Bad Request") && got != "" {
			t.Errorf("slow body without a token: %q", got)
		}
		if tok != "" && !strings.Contains(got, "401 Unauthorized") {
			t.Errorf("slow body with a token: %q", got)
		}
		// The server still answers.
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz after a slow client: %d", resp.StatusCode)
		}
	}
}

// More slow clients than the connection cap: each is cut off in turn, and
// a request waiting behind them is answered.
func TestConnectionCapQueuesAndRecovers(t *testing.T) {
	s, err := New(nil, Options{Listen: "127.0.0.1:0", Limits: Limits{ReadTimeout: 300 * time.Millisecond, MaxConnections: 4}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, s)
	var conns []net.Conn
	for range 12 {
		conns = append(conns, slowPost(t, addr, "/api/v1/runs"))
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("healthz behind slow clients: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	for _, c := range conns {
		cutOff(t, c)
	}
}

func TestBodyLimit(t *testing.T) {
	s, err := New(nil, Options{Listen: "127.0.0.1:0", Limits: Limits{MaxBodyBytes: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, s)
	// Declared too large: refused before it is read.
	resp, err := http.Post("http://"+addr+"/api/v1/runs", "application/json", strings.NewReader(strings.Repeat(" ", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"error": "request body of 5000 bytes: at most 1000 accepted"`) {
		t.Fatalf("large body: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("large body: Content-Type %q", ct)
	}
	// Sent without a length (chunked): refused when read past the limit.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", 3000, strings.Repeat(" ", 3000))
	c.SetReadDeadline(time.Now().Add(time.Minute))
	got, _ := io.ReadAll(c)
	if !strings.Contains(string(got), "413 Request Entity Too Large") || !strings.Contains(string(got), "larger than 1000 bytes") {
		t.Fatalf("chunked large body: %q", got)
	}
}
