package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/filters"
)

func TestGenerateAllOffline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, out, stderr := runCLI(t, "generate", "--vendor", "all", "--offline", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if out != "" {
		t.Errorf("stdout should be empty with --out, got %q", out[:min(len(out), 200)])
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 12 {
		t.Fatalf("%d files written, want 12: %v", len(entries), entries)
	}
	for _, v := range filters.Vendors() {
		b, err := os.ReadFile(filepath.Join(dir, filters.FileName(v)))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if !strings.Contains(string(b), "Regenerate: asfence generate --vendor "+v+" --offline --out "+dir) {
			t.Errorf("%s: header lacks the regenerate line", v)
		}
	}
	for _, want := range []string{"TARGET", "bytedance", "tencent", "junos: ASFENCE-V4 ", "nftables: ASFENCE-ACL-V4 ", "dropped by policy", "wrote " + dir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}

func TestGenerateStdoutAndTarget(t *testing.T) {
	code, out, stderr := runCLI(t, "generate", "--vendor", "json", "--offline", "--target", "tencent")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Targets []struct{ Name string } `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not the json document: %v", err)
	}
	if len(doc.Targets) != 1 || doc.Targets[0].Name != "tencent" {
		t.Errorf("targets %+v, want only tencent", doc.Targets)
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tight := filepath.Join(dir, "tight.yaml")
	if err := os.WriteFile(tight, []byte("outputs:\n  max_entries:\n    default: 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badName := filepath.Join(dir, "badname.yaml")
	if err := os.WriteFile(badName, []byte("outputs:\n  names:\n    prefix_v4: \"bad name\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cap")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"generate", "--offline"}, 2, "--vendor is required"},
		{[]string{"generate", "--vendor", "cisco-nxos", "--offline"}, 2, `unknown vendor "cisco-nxos"`},
		{[]string{"generate", "--vendor", "all", "--offline"}, 2, "needs --out DIR"},
		{[]string{"generate", "--vendor", "all", "--offline", "--out", file}, 2, "not a directory"},
		{[]string{"generate", "--vendor", "junos", "--offline", "--config", tight, "--out", out}, 1, "junos: list ASFENCE-V4 would have"},
		{[]string{"generate", "--vendor", "junos", "--offline", "--config", badName}, 2, "badname.yaml:3: outputs.names.prefix_v4"},
		{[]string{"diff", "a.json"}, 2, "accepts 2 arg"},
		{[]string{"diff", filepath.Join(dir, "none.json"), filepath.Join(dir, "none.json")}, 1, "none.json"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr, c.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed generation wrote %s", out)
	}
}

// TestDiff compares the embedded snapshot with a copy that lost one prefix
// and gained another.
func TestDiff(t *testing.T) {
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")
	writeSnap := func(path string, s *asn.Snapshot) {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := s.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	writeSnap(oldPath, s)
	tr := s.Target("tencent")
	removed := tr.Prefixes[0]
	tr.Prefixes = tr.Prefixes[1:]
	tr.Prefixes = append(tr.Prefixes, asn.Prefix{
		Prefix:   netip.MustParsePrefix("203.205.130.0/24"),
		Origins:  []uint32{132203},
		Evidence: []asn.Evidence{{Source: "test", Detail: "added for the diff test", Seen: s.GeneratedAt}},
	})
	writeSnap(newPath, s)

	code, out, stderr := runCLI(t, "diff", oldPath, newPath, "--vendor", "junos")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"target tencent:",
		"+ 203.205.130.0/24  [origin AS132203; test: added for the diff test",
		"- " + removed.Prefix.String(),
		"=== junos: configuration diff",
		"=== junos: incremental commands",
		"set policy-options prefix-list ASFENCE-ACL-V4 203.205.130.0/24",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "diff", oldPath, newPath, "--vendor", "bird")
	if code != 0 || !strings.Contains(out, "(none: full replace: BIRD reads whole files") || !strings.Contains(out, "+++ "+newPath+" (bird)") {
		t.Errorf("bird diff: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "diff", oldPath, oldPath)
	if code != 0 || !strings.Contains(out, "0 prefixes added, 0 removed") {
		t.Errorf("identical: exit %d\n%s", code, out)
	}
}
