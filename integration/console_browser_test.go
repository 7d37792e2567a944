package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// The review console in a real browser (Debian's chromium, headless,
// driven over the DevTools protocol by chromedp) against the real daemon
// peering with a real BIRD.

const xssHolder = `<script>alert(1)</script>`

// chromiumPath finds Debian's chromium, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed: the console's browser tests need Debian's chromium (make deps and .ci/run install it)")
	return ""
}

// browser is one headless chromium with a fresh profile; it records the
// JavaScript dialogs that open (none should) and saves a screenshot of
// the page when the test fails.
type browser struct {
	t       *testing.T
	ctx     context.Context
	mu      sync.Mutex
	dialogs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first call starts the browser (without a deadline: it would
	// stop the browser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			// Dismiss it, or the page would wait for it.
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	t.Cleanup(b.screenshotOnFailure)
	return b
}

// screenshotOnFailure keeps a PNG of the page as the test's artifact (in
// $ASFENCE_TEST_ARTIFACTS, else the temporary directory).
func (b *browser) screenshotOnFailure() {
	if !b.t.Failed() {
		return
	}
	dir := os.Getenv("ASFENCE_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("no screenshot of the failed test: %v", err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("no screenshot of the failed test: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())
	path := filepath.Join(dir, fmt.Sprintf("asfence-%s-%s.png", name, time.Now().Format("20060102T150405")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("no screenshot of the failed test: %v", err)
		return
	}
	b.t.Logf("screenshot of the page at the failure: %s", path)
}

// deadline bounds one browser step.
const browserStep = 60 * time.Second

// do runs browser steps.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// text is the visible text of the first element matching the CSS
// selector (waiting for it to appear).
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates JavaScript in the page (awaiting a promise).
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluate %.60q: %v", js, err)
	}
	return v
}

// waitPage waits until the page loaded is one whose address contains
// want (after a click that submits a form).
func (b *browser) waitPage(want string) {
	b.t.Helper()
	err := lab.Eventually(b.ctx, browserStep, func(ctx context.Context) error {
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.readyState`))
		if err != nil {
			return err // navigating: the old page's context is gone
		}
		if !strings.Contains(href, want) || !strings.HasSuffix(href, " complete") {
			return fmt.Errorf("page %s, want %s loaded", href, want)
		}
		return nil
	})
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) openedDialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// screenshot saves a page as PNG (the README's picture of the overview,
// taken with a held change waiting: ASFENCE_CONSOLE_SCREENSHOT=FILE).
func (b *browser) screenshot(url, path string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot of %s saved to %s", url, path)
}

// rdapServer answers RDAP autnum queries (RFC 9083, in the shape of the
// ARIN answer in asn/rdap/testdata) naming holder as the registrant of
// every ASN.
func rdapServer(t *testing.T, holder string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /autnum/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseUint(r.PathValue("n"), 10, 32)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		answer := map[string]any{
			"rdapConformance": []string{"rdap_level_0"},
			"objectClassName": "autnum", "handle": fmt.Sprintf("AS%d", n), "startAutnum": n, "endAutnum": n,
			"name": "TEST-NET", "status": []string{"active"},
			"entities": []any{map[string]any{
				"objectClassName": "entity", "roles": []string{"registrant"},
				"vcardArray": []any{"vcard", []any{
					[]any{"version", map[string]any{}, "text", "4.0"},
					[]any{"fn", map[string]any{}, "text", holder},
					[]any{"kind", map[string]any{}, "text", "org"},
				}},
			}},
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		_ = json.NewEncoder(w).Encode(answer)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConsoleBrowser: the console of a daemon peering with BIRD, in
// chromium: counts as the API has them, registry markup shown as text,
// held changes rejected by a click (BIRD unchanged) and approved by
// keyboard only and by a click (BIRD holds the new set), and POSTs
// without the CSRF token or the session refused.
func TestConsoleBrowser(t *testing.T) {
	chromiumPath(t)
	all := func(string, uint32, int) bool { return true }
	half := func(target string, _ uint32, i int) bool { return target != "tencent" || i%2 == 0 }
	srv := startIRRd(t, "127.0.0.1:0", irrData(t, all))
	rdap := rdapServer(t, xssHolder)
	l := newDaemonLab(t, "@every 1h", irrSources(srv.Addr())+"  rdap:\n    base_url: "+rdap+"\noutputs:\n  vendors: [junos, bird]\n")
	const token = "console-test-token-0123456789"
	tokenFile := filepath.Join(l.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(l.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("api:\n  listen: %s:%d\n", l.addr, l.apiPort)
	if !strings.Contains(string(cfg), listen) {
		t.Fatalf("lab config has no %q", listen)
	}
	cfg = []byte(strings.Replace(string(cfg), listen, listen+"  token_file: "+tokenFile+"\n", 1))
	if err := os.WriteFile(l.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	l.client.Token = token
	l.start()
	first := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 })
	if first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	old := l.applied()
	l.holds(old)
	base := l.client.Base
	b := newBrowser(t)
	ctx := context.Background()

	// The overview shows the counts of /api/v1/status.
	st, err := l.client.Status(ctx)
	if err != nil || st.Applied == nil || len(st.Applied.Targets) == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	b.do("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#applied-counts")))
	for _, tc := range st.Applied.Targets {
		for col, want := range map[string]int{"asns": tc.ASNs, "ipv4": tc.IPv4, "ipv6": tc.IPv6} {
			got := b.text(fmt.Sprintf(`#applied-counts tr[data-target=%q] td[data-count=%q]`, tc.Target, col))
			if strings.TrimSpace(got) != strconv.Itoa(want) {
				t.Errorf("overview %s %s: %q, status says %d", tc.Target, col, got, want)
			}
		}
	}

	// The BGP peers as /api/v1/peers has them: routes received and the
	// last NOTIFICATION (none on a session that never failed).
	peers, err := l.client.Peers(ctx)
	if err != nil || len(peers) == 0 {
		t.Fatalf("peers: %+v %v", peers, err)
	}
	for _, p := range peers {
		row := fmt.Sprintf(`tr[data-peer=%q]`, p.Address)
		received := 0
		for _, n := range p.Received {
			received += n
		}
		if got := strings.TrimSpace(b.text(row + ` td[data-count="received"]`)); got != strconv.Itoa(received) {
			t.Errorf("overview peer %s: %s routes received, the API says %d", p.Address, got, received)
		}
		want := "none"
		if n := p.LastNotification; n != nil {
			want = fmt.Sprintf("%s %d/%d %s", n.Direction, n.Code, n.Subcode, n.Text)
		}
		if got := b.text(row + " td.notification"); !strings.Contains(got, want) {
			t.Errorf("overview peer %s: last NOTIFICATION %q, want %q", p.Address, got, want)
		}
	}

	// A holder name with markup from RDAP is shown as text; no dialog.
	b.do("targets", chromedp.Navigate(base+"/targets?target=tencent"))
	if holders := b.text("table.asns"); !strings.Contains(holders, `holder "`+xssHolder+`"`) {
		t.Errorf("the RDAP holder name is not shown as text on the targets page:\n%.600s", holders)
	}
	scripts := eval[int](b, `Array.from(document.scripts).filter(s => s.textContent.includes("alert")).length`)
	if scripts != 0 || len(b.openedDialogs()) != 0 {
		t.Errorf("registry markup ran: %d scripts, dialogs %v", scripts, b.openedDialogs())
	}

	// The search box: an address inside a Tencent prefix is blocked, by
	// that target and prefix, with its evidence.
	pfx := old.Target("tencent").Prefixes[0]
	addr := pfx.Prefix.Addr().Next()
	b.do("lookup", chromedp.Navigate(base+"/targets"), chromedp.SendKeys(chromedp.CSS("#q"), addr.String()+"\r"))
	b.waitPage("q=")
	if ex := b.text("#explain"); !strings.Contains(ex, addr.String()+": blocked") || !strings.Contains(ex, pfx.Prefix.String()+" of target tencent") ||
		!strings.Contains(ex, pfx.Evidence[0].Source) {
		t.Errorf("lookup of %s:\n%s", addr, ex)
	}
	// The vendor files with their headers, as written to output_dir.
	b.do("configs", chromedp.Navigate(base+"/configs"))
	if hdr := b.text("pre.header"); !strings.HasPrefix(hdr, "Generated by asfence") {
		t.Errorf("configs page header: %q", hdr)
	}

	// The registry loses half of Tencent: the guard holds the change.
	srv.Close()
	srv = startIRRd(t, srv.Addr(), irrData(t, half))
	held := l.triggerRun()
	if held.Outcome != store.Held {
		t.Fatalf("run %d: %+v", held.ID, held)
	}
	l.holds(old)
	b.do("overview with a held change", chromedp.Navigate(base+"/"))
	if row := b.text(fmt.Sprintf(`tr.held-run[data-run="%d"]`, held.ID)); !strings.Contains(row, "would withdraw") {
		t.Errorf("overview held row: %q", row)
	}
	b.do("held run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", base, held.ID)), chromedp.WaitVisible(chromedp.CSS("#signin-to-decide")))
	if h := b.text("h1"); !strings.Contains(h, "held") {
		t.Errorf("run page heading: %q", h)
	}

	// The removed prefixes, page by page through the links: the second
	// page holds what the API's page at the same offset holds.
	sum, err := l.client.RunSummary(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	var removed int
	for _, tc := range sum.Change.Targets {
		if tc.Target == "tencent" {
			removed = tc.Removed
		}
	}
	if removed <= 200 {
		t.Fatalf("run %d removes %d tencent prefixes, the test pages through more than 200", held.ID, removed)
	}
	b.do("all removed prefixes", chromedp.Click(chromedp.CSS(`section[data-target="tencent"] a[href*="kind=removed"]`)))
	b.waitPage("kind=removed")
	if pager := b.text("nav.pager > span:not(.off)"); pager != fmt.Sprintf("1–100 of %d", removed) {
		t.Errorf("first page of removed prefixes: pager %q", pager)
	}
	b.do("next page", chromedp.Click(chromedp.CSS(`nav.pager a[rel="next"]`)))
	b.waitPage("offset=100")
	shown := eval[[]string](b, `Array.from(document.querySelectorAll("table.prefixes tbody tr td:first-child")).map(td => td.textContent)`)
	var apiPage []string
	if _, err := l.client.RunPrefixes(ctx, held.ID, store.PrefixQuery{Target: "tencent", Change: store.ChangeRemoved, Offset: 100, Limit: 100}, func(ps []asn.Prefix) error {
		for _, p := range ps {
			apiPage = append(apiPage, p.Prefix.String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(shown, " ") != strings.Join(apiPage, " ") || len(apiPage) != 100 {
		t.Errorf("second page of removed prefixes shows %d rows %.200v, the API's page %d rows %.200v", len(shown), shown, len(apiPage), apiPage)
	}
	if pager := b.text("nav.pager > span:not(.off)"); pager != fmt.Sprintf("101–200 of %d", removed) {
		t.Errorf("second page: pager %q", pager)
	}

	// POSTs the console refuses, sent by the browser with its cookies:
	// the page's CSRF token but no session, and (after signing in) the
	// session but no CSRF token.
	post := func(path string, withCSRF bool) int {
		t.Helper()
		return eval[int](b, fmt.Sprintf(`(async () => {
			const body = new URLSearchParams();
			const field = document.querySelector('input[name="csrf"]');
			if (%t && field) body.set("csrf", field.value);
			const r = await fetch(%q, {method: "POST", body, redirect: "manual"});
			return r.status;
		})()`, withCSRF, path))
	}
	approvePath := fmt.Sprintf("/runs/%d/approve", held.ID)
	b.do("sign-in page", chromedp.Navigate(fmt.Sprintf("%s/login?next=/runs/%d", base, held.ID)), chromedp.WaitVisible(chromedp.CSS("#token")))
	if code := post(approvePath, true); code != http.StatusUnauthorized {
		t.Errorf("approve with the CSRF token, without a session: HTTP %d", code)
	}
	// Sign in through the form.
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#signin")))
	b.waitPage("done=signed-in")
	b.do("signed in", chromedp.WaitVisible(chromedp.CSS("#approve")))
	if code := post(approvePath, false); code != http.StatusForbidden {
		t.Errorf("approve with a session, without the CSRF token: HTTP %d", code)
	}
	if r, _, err := l.client.Run(ctx, held.ID); err != nil || r.Decision != nil {
		t.Fatalf("run %d after refused POSTs: %+v %v", held.ID, r, err)
	}
	l.holds(old)

	// Reject by a click: BIRD keeps the old set.
	b.do("reject", chromedp.Click(chromedp.CSS("#reject")))
	b.waitPage("done=rejected")
	if flash := b.text(".flash"); !strings.Contains(flash, "rejected") {
		t.Errorf("after Reject: %q", flash)
	}
	if r, _, err := l.client.Run(ctx, held.ID); err != nil || r.Decision == nil || r.Decision.Action != store.Rejected {
		t.Fatalf("rejected run: %+v %v", r, err)
	}
	l.holds(old)

	// Held again; approve with the keyboard only: Tab to the button, Enter.
	again := l.triggerRun()
	if again.Outcome != store.Held {
		t.Fatalf("run %d: %+v", again.ID, again)
	}
	if path := os.Getenv("ASFENCE_CONSOLE_SCREENSHOT"); path != "" {
		b.screenshot(base+"/", path)
	}
	b.do("run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", base, again.ID)), chromedp.WaitVisible(chromedp.CSS("#approve")))
	focused := ""
	for i := 0; i < 60 && focused != "approve"; i++ {
		b.do("Tab", chromedp.KeyEvent(kb.Tab))
		focused = eval[string](b, `document.activeElement ? document.activeElement.id : ""`)
	}
	if focused != "approve" {
		t.Fatal("Tab never reached the Approve button")
	}
	b.do("Enter on Approve", chromedp.KeyEvent(kb.Enter))
	b.waitPage("done=approved")
	if flash := b.text(".flash"); !strings.Contains(flash, "approved") {
		t.Errorf("after Enter on Approve: %q", flash)
	}
	want := withoutRemoved(t, l, again.ID, old)
	l.holds(want)
	if got := intentSize(l.applied()); got != intentSize(want) {
		t.Fatalf("applied set has %d prefixes, want %d", got, intentSize(want))
	}

	// The registry recovers: held ("would add"), approved by a click; BIRD
	// holds the old set again.
	srv.Close()
	startIRRd(t, srv.Addr(), irrData(t, all))
	back := l.triggerRun()
	if back.Outcome != store.Held {
		t.Fatalf("recovery run: %+v", back)
	}
	b.do("approve by a click", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", base, back.ID)), chromedp.Click(chromedp.CSS("#approve")))
	b.waitPage("done=approved")
	if flash := b.text(".flash"); !strings.Contains(flash, "approved") {
		t.Errorf("after clicking Approve: %q", flash)
	}
	l.holds(old)
	if d := b.openedDialogs(); len(d) != 0 {
		t.Errorf("dialogs opened: %v", d)
	}
}

// withoutRemoved is old minus what the run's change removed (it must add
// nothing).
func withoutRemoved(t *testing.T, l *daemonLab, id uint64, old *policy.Intent) *policy.Intent {
	t.Helper()
	_, detail, err := l.client.Run(context.Background(), id)
	if err != nil || detail == nil {
		t.Fatalf("run %d detail: %v", id, err)
	}
	gone := map[netip.Prefix]bool{}
	for _, tc := range detail.Change.Targets {
		if len(tc.Added) > 0 {
			t.Fatalf("run %d adds %d prefixes to %s", id, len(tc.Added), tc.Target)
		}
		for _, p := range tc.Removed {
			gone[p.Prefix] = true
		}
	}
	if len(gone) == 0 {
		t.Fatalf("run %d removes nothing", id)
	}
	want := &policy.Intent{}
	for _, tg := range old.Targets {
		nt := tg
		nt.Prefixes = nil
		for _, p := range tg.Prefixes {
			if !gone[p.Prefix] {
				nt.Prefixes = append(nt.Prefixes, p)
			}
		}
		want.Targets = append(want.Targets, nt)
	}
	return want
}
