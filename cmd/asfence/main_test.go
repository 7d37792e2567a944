package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestResolveOfflineJSON(t *testing.T) {
	code, out, stderr := runCLI(t, "resolve", "--offline", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	s, err := asn.DecodeSnapshot("stdout", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bytedance", "tencent"} {
		tr := s.Target(name)
		if tr == nil || len(tr.ASNs) == 0 || len(tr.Prefixes) == 0 {
			t.Fatalf("target %s missing or empty in %s", name, out[:200])
		}
		if len(tr.Prefixes[0].Evidence) == 0 || tr.Prefixes[0].Evidence[0].Source == "" {
			t.Fatalf("%s: prefix without evidence", name)
		}
	}
	// The offline default excludes name-only ASNs.
	for _, a := range s.Target("bytedance").ASNs {
		if a.NameOnly {
			t.Fatalf("name-only AS%d in the default result", a.ASN)
		}
	}
}

func TestResolveOfflineText(t *testing.T) {
	code, out, _ := runCLI(t, "resolve", "--offline", "--target", "tencent")
	if code != 0 || !strings.Contains(out, "target tencent:") || strings.Contains(out, "target bytedance") || !strings.Contains(out, "AS45090") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("targets:\n  - name: x\n    asns: [1]\n    nonsense: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badSnap := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badSnap, []byte(`{"generated_at":"2026-01-01T00:00:00Z","targets":[{"name":"tencent","prefixes":[{"prefix":"1.2.3.4/8"}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"resolve", "--offline", "--format", "xml"}, 2, "--format"},
		{[]string{"resolve", "--bogus"}, 2, "unknown flag"},
		{[]string{"nosuchcommand"}, 2, "unknown command"},
		{[]string{"resolve", "--offline", "--target", "nosuch"}, 2, "unknown target \"nosuch\""},
		{[]string{"check-config", bad}, 2, "bad.yaml:4: targets[0].nonsense: unknown key"},
		{[]string{"check-config", filepath.Join("..", "..", "examples", "asfence.yaml")}, 0, ""},
		{[]string{"resolve", "--snapshot", badSnap}, 1, "targets[0].prefixes[0].prefix: invalid prefix \"1.2.3.4/8\""},
		{[]string{"resolve", "--snapshot", filepath.Join(dir, "missing.json")}, 1, "missing.json"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr, c.msg)
		}
	}
}

func TestVendorsListsAll(t *testing.T) {
	code, out, _ := runCLI(t, "vendors")
	if code != 0 || len(strings.Fields(out)) != 12 || !strings.Contains(out, "nokia-sros") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

// The embedded snapshot must be exactly what `make snapshot` builds from the
// committed inputs: same inputs, same bytes.
func TestEmbeddedSnapshotIsReproducible(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	want, err := os.ReadFile("asn/data/default.json")
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "resolve", "--config", "asn/data/snapshot.yaml", "--at", "2026-11-23T00:00:00Z", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if out != string(want) {
		t.Fatalf("rebuilt snapshot differs from asn/data/default.json (%d vs %d bytes): run `make snapshot`", len(out), len(want))
	}
}

// check-config reports every problem of a file at once, each as
// file:line: field.path: problem, and exits 2.
func TestCheckConfigReportsEveryProblem(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	doc := "schedul: \"@every 1h\"\nbgp:\n  asn: sixty\n  router_id: 0.0.0.0\n  graceful_restart: {restart_time: 4096}\n" +
		"  neighbors:\n    - {address: 127.0.0.6, asn: 65000, hold_time: 2}\n    - {address: \"::ffff:127.0.0.6\", asn: 65000}\njitter: 1000000h\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "check-config", cfg)
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{
		"c.yaml:1: schedul: unknown key (did you mean schedule?)",
		`c.yaml:3: bgp.asn: want a whole number from 0 to 4294967295, got "sixty"`,
		"c.yaml:4: bgp.router_id: must not be 0.0.0.0",
		"c.yaml:5: bgp.graceful_restart.restart_time: must be 1-4095 seconds",
		"c.yaml:7: bgp.neighbors[0].hold_time: must be 3-65535 seconds",
		"c.yaml:8: bgp.neighbors[1].address: duplicate neighbor 127.0.0.6",
		"c.yaml:9: jitter: 1000000h is longer than a day",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
