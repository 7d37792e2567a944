package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/internal/syncbuf"
)

// TestServe runs the command as a user would, on a free port, and queries
// it with the IRR client.
func TestServe(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-addr-file", addrFile, "-no-a",
			"../../asn/irr/testdata/ripe-nonauth-route-sample.rpsl", "../../asn/irr/testdata/ripe-as-set-tencent-bytedance-refs.rpsl"}, &log)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("no address file; log: %s", log.String())
		} else {
			select {
			case err := <-done:
				t.Fatalf("exited: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	c, err := irr.New(irr.Config{Address: addr, Sources: []string{"RIPE-NONAUTH"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	facts, err := c.Resolve(context.Background(), nil, []uint32{2561})
	if err != nil || len(facts.Prefixes) != 16 {
		t.Errorf("%d prefixes, %v", len(facts.Prefixes), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if !strings.Contains(log.String(), "serving 62 route, 0 route6, 8 as-set, 0 aut-num objects (sources RIPE-NONAUTH,RIPE) on "+addr) {
		t.Errorf("log %q", log.String())
	}
}

func TestUsage(t *testing.T) {
	var log bytes.Buffer
	for _, args := range [][]string{{}, {"-bogus"}, {"-gen-bgpdump", "x"}} {
		err := run(context.Background(), args, &log)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "/nonexistent.rpsl"}, &log)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent.rpsl") {
		t.Errorf("missing file: %v", err)
	}
}

// TestReload changes the served file and sends SIGHUP: the new data is
// served; a broken file is rejected and the previous data stays.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "lab.rpsl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(data, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("route: 192.0.2.0/24\norigin: AS64500\nsource: TEST\n\nroute: 198.51.100.0/24\norigin: AS64500\nsource: TEST\n")
	addrFile := filepath.Join(dir, "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-addr-file", addrFile, data}, log) }()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("no address file; log: %s", log.String())
		}
	}
	count := func() int {
		t.Helper()
		c, err := irr.New(irr.Config{Address: addr, Sources: []string{"TEST"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, err := c.Resolve(context.Background(), nil, []uint32{64500})
		if err != nil {
			t.Fatal(err)
		}
		return len(f.Prefixes)
	}
	waitCount := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			n := count()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d prefixes served, want %d; log: %s", n, want, log.String())
			}
		}
	}
	waitCount(2)
	write("route: 192.0.2.0/24\norigin: AS64500\nsource: TEST\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCount(1)
	write("route: 192.0.2.0/33\norigin: AS64500\nsource: TEST\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "reload rejected"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broken file not rejected; log: %s", log.String())
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("after a rejected reload %d prefixes served, want the previous 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
