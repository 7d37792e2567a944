package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
)

// slowPost opens a connection to the API and sends a POST whose body
// never comes: Content-Length 100, one byte.
func slowPost(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST /api/v1/runs HTTP/1.1\r\nHost: asfence\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	return c
}

// cutOff reads until the daemon closes c (the deadline is a bound for the
// test, far above the daemon's timeout) and returns what it answered.
func cutOff(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(90 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the daemon did not close a slow connection: %v (read %q)", err, b)
	}
	return string(b)
}

// openFiles counts the descriptors the process holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestDaemonAPISlowClients: clients that send a request's headers and
// never its body cannot starve the daemon. It runs with an open-file limit
// of 256 (as a small container might), so the API's connection cap is
// lowered to what the limit leaves beside BGP and the store; 400 such
// clients at once keep it at that cap, each is cut off after
// api.read_timeout, /healthz answers, a SIGHUP reload (which opens the
// config, the store and the output files) works during the flood, and the
// session with BIRD is never reset.
func TestDaemonAPISlowClients(t *testing.T) {
	l := newDaemonLab(t, "@every 1h", "")
	cfg, err := os.ReadFile(l.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("  listen: %s:%d\n", l.addr, l.apiPort)
	if !strings.Contains(string(cfg), listen) {
		t.Fatalf("no %q in the config", listen)
	}
	cfg = []byte(strings.Replace(string(cfg), listen, listen+"  read_timeout: 1s\n", 1))
	if err := os.WriteFile(l.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	const nofile = 256
	l.wrap = []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}
	l.start("--offline")
	pid := l.proc.cmd.Process.Pid
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != l.bin {
		t.Fatalf("process %d is %q (%v), not asfence", pid, exe, err)
	}
	if r := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 }); r.Outcome != store.Applied {
		t.Fatalf("first run: %+v", r)
	}
	want := l.applied()
	l.holds(want)
	ctx := context.Background()
	before, err := l.bird.Session(ctx, l.addr)
	if err != nil || !before.Established {
		t.Fatalf("BIRD session before: %+v %v", before, err)
	}
	logText, _ := os.ReadFile(l.proc.log)
	// 256 - 128 kept - 2 for the one neighbor.
	const maxConns = nofile - 128 - 2
	if !strings.Contains(string(logText), fmt.Sprintf(`"max_connections":%d`, maxConns)) {
		t.Fatalf("the log does not say the connection cap was lowered to %d:\n%s", maxConns, logText)
	}
	http.DefaultClient.CloseIdleConnections()
	base := openFiles(t, pid)
	apiAddr := fmt.Sprintf("%s:%d", l.addr, l.apiPort)

	// One slow client is cut off, and its request triggered nothing.
	got := cutOff(t, slowPost(t, apiAddr))
	if strings.Contains(got, "202 Accepted") {
		t.Fatalf("a request without its body started a run: %q", got)
	}

	// 400 at once: more than the limit of open files.
	var conns []net.Conn
	for range 400 {
		conns = append(conns, slowPost(t, apiAddr))
	}
	// The daemon holds at most its cap of them; the others wait in the
	// kernel's queue.
	if n := openFiles(t, pid); n > base+maxConns+2 {
		t.Fatalf("the daemon holds %d descriptors with 400 slow clients (%d before, cap %d)", n, base, maxConns)
	}
	// A reload needs descriptors: it works during the flood.
	l.proc.signal(syscall.SIGHUP)
	if err := lab.Eventually(ctx, 90*time.Second, func(context.Context) error {
		b, _ := os.ReadFile(l.proc.log)
		if !strings.Contains(string(b), "config reloaded") && !strings.Contains(string(b), "reload rejected") {
			return errors.New("no reload in the log yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(l.proc.log); !strings.Contains(string(b), "config reloaded") {
		t.Fatalf("reload during the flood failed:\n%s", b)
	}
	// /healthz answers behind them.
	hc := &http.Client{Timeout: 90 * time.Second}
	resp, err := hc.Get(l.client.Base + "/healthz")
	if err != nil {
		t.Fatalf("healthz during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	for _, c := range conns {
		if got := cutOff(t, c); strings.Contains(got, "202 Accepted") {
			t.Fatalf("a request without its body started a run: %q", got)
		}
	}
	if n := openFiles(t, pid); n > base+maxConns+2 {
		t.Fatalf("the daemon holds %d descriptors after the flood (%d before)", n, base)
	}

	// The reload's run went through (store, outputs), BIRD's session was
	// never reset and it holds the same set.
	if r := l.waitRun("reload", 60*time.Second, func(r *store.Run) bool { return r.Trigger == "reload" }); r.Outcome != store.Unchanged {
		t.Fatalf("reload run: %+v", r)
	}
	if rs, err := l.client.Runs(ctx, store.ListOptions{}); err != nil || len(rs) != 2 {
		t.Fatalf("runs: %d %v (want the first and the reload's only)", len(rs), err)
	}
	after, err := l.bird.Session(ctx, l.addr)
	if err != nil || !after.Established || after.Since.Sub(before.Since).Abs() > after.Precision {
		t.Fatalf("BIRD session: before %+v, after %+v %v", before, after, err)
	}
	l.holds(want)
	if b, _ := os.ReadFile(l.proc.log); strings.Contains(string(b), "too many open files") {
		t.Fatalf("the daemon ran out of descriptors:\n%s", b)
	}
}
