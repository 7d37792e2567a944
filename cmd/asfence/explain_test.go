package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explain exits 0 whether or not the query is blocked; text and JSON say
// which.
func TestExplainCommand(t *testing.T) {
	code, out, stderr := runCLI(t, "explain", "--offline", "71.18.0.1")
	if code != 0 || !strings.HasPrefix(out, "71.18.0.1: BLOCKED\n") || !strings.Contains(out, "target bytedance: 71.18.0.0/21 (covers), origin AS396986") ||
		!strings.Contains(out, "list entries: route filter 71.18.0.0/21 le 32") {
		t.Fatalf("exit %d: %s\n%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, "explain", "--offline", "8.8.8.8", "--format", "json")
	var r struct {
		Query   string            `json:"query"`
		Blocked bool              `json:"blocked"`
		Matches []json.RawMessage `json:"matches"`
		Dropped []json.RawMessage `json:"dropped"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Query != "8.8.8.8" || r.Blocked || r.Matches == nil || len(r.Matches) != 0 || r.Dropped == nil {
		t.Fatalf("exit %d (%v): %s", code, err, out)
	}
	// The policy of the config applies: protected space is reported as
	// dropped, not blocked.
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("policy:\n  protect: [71.18.0.0/16]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "explain", "--offline", "--config", cfg, "71.18.0.1")
	if code != 0 || !strings.HasPrefix(out, "71.18.0.1: not blocked") || !strings.Contains(out, "bytedance 71.18.0.0/21: protected (overlaps protected 71.18.0.0/16)") {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"explain", "--offline", "nonsense"}, {"explain", "--offline"}, {"explain", "--offline", "1.2.3.4", "--format", "xml"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
