package console

import (
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/internal/store"
)

// A run that resolved a snapshot links to its report (served by the API);
// the fixture's runs without a snapshot time, and failed runs, do not.
func TestRunReportLink(t *testing.T) {
	f := newFixture(t)
	f.add(&store.Run{Trigger: "schedule", Start: fixtureTime.Add(2 * time.Hour), End: fixtureTime.Add(2*time.Hour + time.Second),
		Outcome: store.Unchanged, SnapshotTime: fixtureTime.Add(2 * time.Hour)}, &store.Detail{})
	f.add(&store.Run{Trigger: "schedule", Start: fixtureTime.Add(3 * time.Hour), End: fixtureTime.Add(3*time.Hour + time.Second),
		Outcome: store.Failed, SnapshotTime: fixtureTime.Add(3 * time.Hour), Error: "all sources failed"}, &store.Detail{})
	b := serve(t, f, "")
	if _, body := b.get("/runs/3"); !strings.Contains(body, `<a href="/api/v1/runs/3/report?format=html">`) {
		t.Errorf("run 3 does not link to its report")
	}
	for _, path := range []string{"/runs/1", "/runs/4"} {
		if _, body := b.get(path); strings.Contains(body, `id="run-report"`) {
			t.Errorf("%s links to a report it has not", path)
		}
	}
}
