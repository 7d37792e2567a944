package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestReportCommand(t *testing.T) {
	code, out, stderr := runCLI(t, "report", "--offline")
	if code != 0 || !strings.Contains(out, "== target bytedance: 7 ASNs") || !strings.Contains(out, "space by source") {
		t.Fatalf("exit %d: %.500s\n%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, "report", "--offline", "--target", "tencent", "--format", "json")
	var r struct {
		Targets []struct {
			Name      string `json:"name"`
			CloudOnly struct {
				Total int `json:"total"`
			} `json:"cloud_only"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.Targets) != 1 || r.Targets[0].Name != "tencent" || r.Targets[0].CloudOnly.Total == 0 {
		t.Fatalf("exit %d (%v): %.300s", code, err, out)
	}
	code, out, _ = runCLI(t, "report", "--offline", "--format", "html")
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "<svg") {
		t.Fatalf("exit %d: %.300s", code, out)
	}
	if code, _, _ := runCLI(t, "report", "--offline", "--format", "pdf"); code != 2 {
		t.Errorf("--format pdf: exit %d, want 2", code)
	}
}
