package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/report"
)

// Each run keeps the report of its own snapshot and Intent, served at
// /api/v1/runs/{id}/report as JSON or as the HTML page: a held run that
// halves ByteDance reports half the prefixes, the applied run before it
// the whole set.
func TestRunReport(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	full := h.prefixCount("bytedance")
	writeSnapshot(t, h.snap, halve(embedded(t), "bytedance"))
	if r := h.trigger(); r.Outcome != store.Held {
		t.Fatalf("run 2 = %+v", r)
	}
	attributed := func(id string) int {
		var rep report.Report
		h.getJSON("/api/v1/runs/"+id+"/report", http.StatusOK, &rep)
		for _, tg := range rep.Targets {
			if tg.Name == "bytedance" {
				if len(tg.BySource) == 0 || tg.Blocked.Prefixes != tg.Attributed.Prefixes {
					t.Errorf("run %s: bytedance report %+v", id, tg)
				}
				return tg.Attributed.Prefixes
			}
		}
		t.Fatalf("run %s: no bytedance in the report", id)
		return 0
	}
	if got := attributed("1"); got != full {
		t.Errorf("run 1 reports %d bytedance prefixes, %d applied", got, full)
	}
	if got, want := attributed("2"), (full+1)/2; got != want {
		t.Errorf("held run 2 reports %d bytedance prefixes, want %d", got, want)
	}
	resp, err := http.Get(h.client.Base + "/api/v1/runs/2/report?format=html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(string(body), "<svg") || !strings.Contains(string(body), `id="t-bytedance"`) {
		t.Errorf("html report: %d %v %.300s", resp.StatusCode, resp.Header, body)
	}
	for path, code := range map[string]int{"/api/v1/runs/2/report?format=xml": 400, "/api/v1/runs/99999/report": 404, "/api/v1/runs/x/report": 400} {
		if got, body := h.do("GET", path, "", ""); got != code {
			t.Errorf("GET %s: %d, want %d: %.200s", path, got, code, body)
		}
	}
}
