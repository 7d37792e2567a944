package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/report"
)

// The HTML report (asfence report --format html) of the embedded snapshot
// in a real browser (Debian's chromium, headless): the page loads nothing
// but itself, shows one section per target, draws one SVG bar per source
// with space of the family, the longest bar is the largest source, and
// registry text with markup is shown as text (no dialog opens).
// ASFENCE_REPORT_SCREENSHOT=FILE saves a PNG of its first screen
// (docs/report.png).
func TestReportBrowser(t *testing.T) {
	chromiumPath(t)
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s = asn.Select(s, asn.Builtin())
	// A holder name with markup, as a registry could send it.
	s.Target("tencent").Description = `<script>alert("report")</script>`
	pol, err := policy.PolicyConfig{Targets: map[string]policy.TargetPolicyConfig{"tencent": {ExcludeSources: []string{"cloud-ranges"}}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(s, pol.Apply(s))
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do("open the report", chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("main")))

	if n := eval[int](b, `document.querySelectorAll("section.target").length`); n != len(r.Targets) {
		t.Errorf("%d target sections, want %d", n, len(r.Targets))
	}
	// Nothing but the file itself is loaded.
	if n := eval[int](b, `performance.getEntriesByType("resource").length`); n != 0 {
		t.Errorf("the page loaded %d resources", n)
	}
	for i, tg := range r.Targets {
		bars4, bars6 := 0, 0
		var top string
		var max uint64
		for _, src := range tg.BySource {
			if src.IPv4 > 0 {
				bars4++
				if src.IPv4 > max {
					max, top = src.IPv4, src.Source
				}
			}
			if src.IPv6 > 0 {
				bars6++
			}
		}
		sel := `document.querySelectorAll("section.target")[` + strconv.Itoa(i) + `]`
		if n := eval[int](b, sel+`.querySelectorAll("figure")[0].querySelectorAll("svg rect").length`); n != bars4 {
			t.Errorf("%s: %d IPv4 bars, want %d", tg.Name, n, bars4)
		}
		if n := eval[int](b, sel+`.querySelectorAll("figure")[1].querySelectorAll("svg rect").length`); n != bars6 {
			t.Errorf("%s: %d IPv6 bars, want %d", tg.Name, n, bars6)
		}
		// The widest bar as the browser lays it out is the largest source.
		widest := eval[string](b, `(() => { let best = null, w = -1;
			for (const g of `+sel+`.querySelectorAll("figure")[0].querySelectorAll("svg g")) {
				const r = g.querySelector("rect").getBoundingClientRect();
				if (r.width > w) { w = r.width; best = g.querySelector("text").textContent; }
			}
			return best; })()`)
		if widest != top {
			t.Errorf("%s: widest IPv4 bar %q, want %q", tg.Name, widest, top)
		}
	}
	// What the browser shows: the description as text, the drops of the
	// excluded cloud list.
	if got := b.text("#t-tencent h2"); got != `tencent <script>alert("report")</script>` {
		t.Errorf("heading %q", got)
	}
	if got := eval[string](b, `document.querySelector("#t-tencent").innerText`); !bytes.Contains([]byte(got), []byte("excluded-source")) {
		t.Errorf("tencent section lacks the excluded-source drops")
	}
	if d := b.openedDialogs(); len(d) != 0 {
		t.Errorf("dialogs opened: %v", d)
	}
	if path := os.Getenv("ASFENCE_REPORT_SCREENSHOT"); path != "" {
		ctx, cancel := context.WithTimeout(b.ctx, browserStep)
		defer cancel()
		// The first screen (the whole page is tens of screens long).
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved to %s (%d bytes)", path, len(png))
	}
}
