package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
)

// closedAddr is a loopback address nothing listens on: an IRR server that
// is down.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestOneShotsFailWhenAPrefixSourceFails: with an IRR server down,
// `resolve` and `generate` exit 1 and `generate` prints no filter, whether
// another source answered or the only one failed (the target's seed ASN
// alone is no answer): a cron job `generate > filter && push` must never
// push a filter that lost prefixes. --allow-incomplete gives what the
// others said.
func TestOneShotsFailWhenAPrefixSourceFails(t *testing.T) {
	x, err := irr.LoadFiles("../../asn/irr/testdata/ripe-nonauth-route-sample.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := irrd.Listen("127.0.0.1:0", x, irrd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	down := closedAddr(t)
	config := func(name string, servers ...string) string {
		var b strings.Builder
		b.WriteString("targets:\n  - name: example\n    asns: [2561]\nsources:\n  timeout: 10s\n  irr:\n    servers:\n")
		for _, s := range servers {
			fmt.Fprintf(&b, "      - address: %s\n        sources: [ripe-nonauth]\n", s)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := config("good.yaml", srv.Addr())
	partial := config("partial.yaml", srv.Addr(), down)
	only := config("only.yaml", down)

	// Both servers answer: the filter, exit 0.
	code, out, stderr := runCLI(t, "generate", "--vendor", "junos", "--config", good)
	if code != 0 || !strings.Contains(out, "route-filter-list") {
		t.Fatalf("generate with every source up: exit %d\n%.300s\n%s", code, out, stderr)
	}
	for _, tc := range []struct{ name, cfg string }{{"one of two servers down", partial}, {"the only server down", only}} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, "generate", "--vendor", "junos", "--config", tc.cfg)
			if code != 1 || out != "" || !strings.Contains(stderr, "irr:"+down) || !strings.Contains(stderr, "--allow-incomplete") {
				t.Fatalf("generate: exit %d, want 1 with nothing on stdout and the failed source named\nstdout: %.300s\nstderr: %s", code, out, stderr)
			}
			outFile := filepath.Join(dir, "filter.junos")
			os.Remove(outFile)
			code, _, stderr = runCLI(t, "generate", "--vendor", "junos", "--config", tc.cfg, "--out", outFile)
			if _, err := os.Stat(outFile); code != 1 || err == nil {
				t.Fatalf("generate --out: exit %d, file written: %v\n%s", code, err == nil, stderr)
			}
			code, out, stderr = runCLI(t, "resolve", "--config", tc.cfg, "--format", "json")
			if code != 1 || !strings.Contains(stderr, "irr:"+down) {
				t.Fatalf("resolve: exit %d, want 1\n%s", code, stderr)
			}
			// What resolve printed says that it is incomplete, so that a
			// generate --snapshot from it refuses it too.
			s, err := asn.DecodeSnapshot("stdout", []byte(out))
			if err != nil || len(s.Incomplete) == 0 {
				t.Fatalf("resolve output: %v, incomplete %v", err, s)
			}
			snap := filepath.Join(dir, "incomplete.json")
			os.WriteFile(snap, []byte(out), 0o644)
			if code, out, stderr := runCLI(t, "generate", "--vendor", "junos", "--snapshot", snap); code != 1 || out != "" {
				t.Fatalf("generate --snapshot of an incomplete snapshot: exit %d\n%.300s\n%s", code, out, stderr)
			}
		})
	}
	// --allow-incomplete: what the server that answered gave, marked.
	code, out, stderr = runCLI(t, "generate", "--vendor", "junos", "--config", partial, "--allow-incomplete")
	if code != 0 || !strings.Contains(out, "INCOMPLETE") || !strings.Contains(out, "route-filter-list") {
		t.Fatalf("generate --allow-incomplete: exit %d\n%.500s\n%s", code, out, stderr)
	}
	if code, _, stderr := runCLI(t, "resolve", "--config", partial, "--allow-incomplete"); code != 0 {
		t.Fatalf("resolve --allow-incomplete: exit %d\n%s", code, stderr)
	}
}
