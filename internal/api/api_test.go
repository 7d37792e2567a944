package api

import (
	"context"
	"errors"
	"net"
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
