package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
