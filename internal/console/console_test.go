package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/explain"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// The pages are tested against a backend made of real data: the embedded
// snapshot (with a hostile holder name added) through the default policy,
// vendor files rendered from it, and runs whose changes come from
// policy.Compare. The daemon's own backend is tested with the real
// daemon and a real browser in integration/.

const (
	xssHolder   = `<script>alert(1)</script>`
	xssEvidence = `<img src=x onerror=alert(2)>`
	bigRun      = 100_000
)

type fixture struct {
	mu       sync.Mutex
	applied  *Applied
	runs     []*store.Run // by id - 1
	details  map[uint64]*store.Detail
	dir      string
	vendors  []string
	decided  []string
	triggers int
}

// fixtureData is built once: the fixtures share it read-only (the change
// of a 100k-prefix run takes a while, the more under the race detector).
var fixtureData = sync.OnceValues(func() (*fixtureBase, error) {
	snap, err := asn.Embedded()
	if err != nil {
		return nil, err
	}
	tg := &snap.Targets[0]
	tg.ASNs[0].Name = xssHolder
	tg.ASNs[0].Evidence = append(tg.ASNs[0].Evidence, asn.Evidence{Source: "rdap", Detail: "holder " + xssEvidence, Seen: time.Now()})
	fb := &fixtureBase{snap: snap, in: policy.DefaultPolicy().Apply(snap), files: map[string][]byte{}}
	fb.first = policy.Compare(nil, fb.in)
	// A held run adding bigRun prefixes to the first target.
	big := &policy.Intent{Targets: slices.Clone(fb.in.Targets)}
	bt := &big.Targets[0]
	bt.Prefixes = slices.Clone(bt.Prefixes)
	for i := range bigRun {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		bt.Prefixes = append(bt.Prefixes, asn.Prefix{Prefix: p, Origins: []uint32{64500},
			Evidence: []asn.Evidence{{Source: "irr:TEST", Detail: "route object, origin AS64500", Seen: fixtureTime}}})
	}
	fb.big = policy.Compare(fb.in, big)
	for _, v := range fixtureVendors {
		data, err := filters.Render(fb.in, filters.RenderOptions{Vendor: v, Version: "test"})
		if err != nil {
			return nil, err
		}
		fb.files[filters.FileName(v)] = data
	}
	return fb, nil
})

type fixtureBase struct {
	snap       *asn.Snapshot
	in         *policy.Intent
	first, big policy.Change
	files      map[string][]byte
}

var (
	fixtureTime    = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	fixtureVendors = []string{"junos", "bird", "json"}
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	fb, err := fixtureData()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{details: map[uint64]*store.Detail{}, dir: t.TempDir(), vendors: fixtureVendors}
	now := fixtureTime
	f.add(&store.Run{Trigger: "startup", Start: now, End: now.Add(time.Second), Outcome: store.Applied,
		Targets: store.Count(fb.in), Diff: store.Summarize(fb.first),
		BGP: &bgp.Counts{Added: 5, Withdrawn: 1, Refused: 2, ByFamily: map[string]bgp.FamilyCounts{
			"ipv4-unicast": {Added: 4, Withdrawn: 1}, "ipv6-unicast": {Added: 1}, "ipv4-flowspec": {}}}}, &store.Detail{Change: fb.first,
		OutputDiffs: []store.OutputDiff{{File: "asfence-junos.conf", Diff: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+" + xssEvidence + "\n"}}})
	f.add(&store.Run{Trigger: "api", Start: now.Add(time.Hour), End: now.Add(time.Hour + time.Second), Outcome: store.Held,
		Guard: []string{fmt.Sprintf("%s: would add %d prefixes", fb.in.Targets[0].Name, bigRun)}, Diff: store.Summarize(fb.big)},
		&store.Detail{Change: fb.big})
	f.applied = &Applied{RunID: 1, At: now, Intent: fb.in, Snapshot: fb.snap}
	for name, data := range fb.files {
		if err := os.WriteFile(filepath.Join(f.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) add(r *store.Run, d *store.Detail) {
	r.ID = uint64(len(f.runs) + 1)
	f.runs = append(f.runs, r)
	f.details[r.ID] = d
}

func (f *fixture) Status(context.Context) (*api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &api.Status{Version: "test", Ready: true, Applied: &api.AppliedInfo{RunID: 1, Targets: store.Count(f.applied.Intent)},
		LastRun: f.runs[len(f.runs)-1], FailedSources: []store.SourceStatus{}}
	for _, r := range f.runs {
		if waiting(r) {
			st.Held = append(st.Held, r)
		}
	}
	return st, nil
}

func (f *fixture) Runs(_ context.Context, o store.ListOptions) ([]*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Run
	for i := len(f.runs) - 1; i >= 0 && len(out) < o.Limit; i-- {
		r := f.runs[i]
		if (o.Before == 0 || r.ID < o.Before) && (o.Outcome == "" || r.Outcome == o.Outcome) && (o.Trigger == "" || r.Trigger == o.Trigger) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fixture) RunSummary(_ context.Context, id uint64) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == 0 || id > uint64(len(f.runs)) {
		return nil, fmt.Errorf("run %d: %w", id, store.ErrNotFound)
	}
	r := *f.runs[id-1]
	return &r, nil
}

func (f *fixture) RunChanges(_ context.Context, id uint64, q ChangeQuery) (*Changes, error) {
	d := f.details[id]
	for _, tc := range d.Change.Targets {
		if tc.Target != q.Target {
			continue
		}
		out := &Changes{}
		page := func(n int) (int, int) { return min(q.Offset, n), min(q.Offset+q.Limit, n) }
		switch q.Kind {
		case Added:
			a, b := page(len(tc.Added))
			out.Total, out.Prefixes = len(tc.Added), tc.Added[a:b]
		case Removed:
			a, b := page(len(tc.Removed))
			out.Total, out.Prefixes = len(tc.Removed), tc.Removed[a:b]
		case AddedASNs:
			a, b := page(len(tc.AddedASNs))
			out.Total, out.ASNs = len(tc.AddedASNs), tc.AddedASNs[a:b]
		case RemovedASNs:
			a, b := page(len(tc.RemovedASNs))
			out.Total, out.ASNs = len(tc.RemovedASNs), tc.RemovedASNs[a:b]
		}
		return out, nil
	}
	return nil, store.ErrNotFound
}

func (f *fixture) RunDiffFiles(_ context.Context, id uint64) ([]store.DiffFile, error) {
	var out []store.DiffFile
	for _, d := range f.details[id].OutputDiffs {
		out = append(out, store.DiffFile{File: d.File, Bytes: len(d.Diff)})
	}
	return out, nil
}

func (f *fixture) RunDiffLines(_ context.Context, id uint64, file string, offset, limit int) ([]string, int, error) {
	for _, d := range f.details[id].OutputDiffs {
		if d.File == file {
			lines := strings.Split(strings.TrimSuffix(d.Diff, "\n"), "\n")
			return lines[min(offset, len(lines)):min(offset+limit, len(lines))], len(lines), nil
		}
	}
	return nil, 0, fmt.Errorf("run %d recorded no diff of %q: %w", id, file, store.ErrNotFound)
}

func (f *fixture) Trigger(context.Context, string) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers++
	return f.runs[0], nil
}

func (f *fixture) decide(id uint64, action, by string) (*store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id-1]
	if !waiting(r) {
		return nil, &store.NotHeldError{Run: r}
	}
	r.Decision = &store.Decision{Action: action, By: by}
	f.decided = append(f.decided, fmt.Sprintf("%s %d by %s", action, id, by))
	return r, nil
}

func (f *fixture) Approve(_ context.Context, id uint64, by string) (*store.Run, error) {
	return f.decide(id, store.Approved, by)
}

func (f *fixture) Reject(_ context.Context, id uint64, by string) (*store.Run, error) {
	return f.decide(id, store.Rejected, by)
}

func (f *fixture) Applied(context.Context) (*Applied, error) { return f.applied, nil }

func (f *fixture) Outputs(context.Context) ([]Output, error) {
	var out []Output
	for _, v := range f.vendors {
		o := Output{Vendor: v, File: filters.FileName(v)}
		st, err := os.Stat(filepath.Join(f.dir, o.File))
		if err != nil {
			o.Error = err.Error()
		} else {
			o.Size, o.ModTime = st.Size(), st.ModTime()
		}
		out = append(out, o)
	}
	return out, nil
}

func (f *fixture) OpenOutput(_ context.Context, file string) (*os.File, error) {
	for _, v := range f.vendors {
		if filters.FileName(v) == file {
			return os.Open(filepath.Join(f.dir, file))
		}
	}
	return nil, store.ErrNotFound
}

func (f *fixture) Peers(context.Context) ([]bgp.PeerStatus, error) {
	return []bgp.PeerStatus{{Address: "192.0.2.21", ASN: 64512, State: "established", Established: true, Uptime: bgp.Uptime(time.Hour + 2*time.Minute + 3*time.Second), Sent: map[string]int{"ipv4-unicast": 3},
		Received: map[string]int{"ipv4-unicast": 7, "ipv6-unicast": 2}},
		{Address: "192.0.2.22", ASN: 64513, State: "active", Sent: map[string]int{},
			LastNotification: &bgp.Notification{Direction: "received", Code: 2, Subcode: 6, Text: "OPEN message error: unacceptable hold time", At: fixtureTime}}}, nil
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func serve(t *testing.T, f *fixture, token string) *browser {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	con, err := New(f, Options{Token: func() string { return token }, Version: "test", Log: logrus.NewEntry(log)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("%s has no form token", path)
	}
	return m[1]
}

func TestPagesAndHeaders(t *testing.T) {
	f := newFixture(t)
	b := serve(t, f, "")
	for path, want := range map[string]string{
		"/":                           `data-count="ipv4"`,
		"/runs":                       `data-run="2"`,
		"/runs?outcome=held":          `data-outcome="held"`,
		"/runs/1":                     "Prefixes added",
		"/runs/2":                     "would add 100000 prefixes",
		"/targets":                    "Origin ASNs",
		"/targets?family=ipv6":        "::/",
		"/configs":                    "Generated by asfence test for junos",
		"/configs/asfence-junos.conf": "policy-options",
		"/static/console.css":         "--fg",
	} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want %q in the page", path, resp.StatusCode, want)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	// No inline script or event handler on any page (the CSP would block
	// them; their absence keeps the pages working).
	inline := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<[a-z]+[^>]*\s(on[a-z]+|style)=`)
	for _, path := range []string{"/", "/runs", "/runs/1", "/runs/2", "/targets", "/configs", "/login"} {
		if _, body := b.get(path); inline.MatchString(body) {
			t.Errorf("%s has inline script, event handler or style: %s", path, inline.FindString(body))
		}
	}
	for path, code := range map[string]int{
		"/runs/99": http.StatusNotFound, "/runs/x": http.StatusBadRequest, "/runs?outcome=nope": http.StatusBadRequest,
		"/runs?from=yesterday": http.StatusBadRequest, "/targets?sort=nope": http.StatusBadRequest,
		"/configs/..%2f..%2fetc%2fpasswd": http.StatusNotFound, "/configs/asfence.nft": http.StatusNotFound,
		"/runs/2/changes?target=bytedance&kind=all": http.StatusBadRequest, "/nope": http.StatusNotFound,
	} {
		if resp, _ := b.get(path); resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

// TestRunBGPCounts: a run's page shows what the speaker changed, in
// total and per family (families it did not change are left out).
func TestRunBGPCounts(t *testing.T) {
	b := serve(t, newFixture(t), "")
	_, body := b.get("/runs/1")
	for _, want := range []string{`<dt>BGP</dt><dd>added 5 refused 2 withdrawn 1`,
		`<span class="muted" data-family="ipv4-unicast">ipv4-unicast: added 4, withdrawn 1</span>`,
		`<span class="muted" data-family="ipv6-unicast">ipv6-unicast: added 1, withdrawn 0</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %s", want)
		}
	}
	if strings.Contains(body, `data-family="ipv4-flowspec"`) {
		t.Error("run page lists a family the run did not change")
	}
}

// TestOverviewPeers: each BGP peer's uptime, routes received and last
// NOTIFICATION (direction, code/subcode and its text, time) are on the
// overview.
func TestOverviewPeers(t *testing.T) {
	b := serve(t, newFixture(t), "")
	_, body := b.get("/")
	for _, want := range []string{
		`<tr data-peer="192.0.2.21">`, `<span class="ok">established</span> <span class="muted">1h2m3s</span>`, `data-count="received" title="ipv4-unicast=7 ipv6-unicast=2 ">9</td>`,
		`<tr data-peer="192.0.2.22">`, `<span data-direction="received">received</span> <span class="mono" data-code="2/6">2/6</span> OPEN message error: unacceptable hold time<br><time datetime="2026-11-30T12:00:00Z">2026-11-30 12:00:00Z</time>`,
		`<span class="muted">none</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
}

// TestRegistryDataEscaped: a holder name and evidence details with markup
// are shown as text.
func TestRegistryDataEscaped(t *testing.T) {
	f := newFixture(t)
	b := serve(t, f, "")
	target := f.applied.Intent.Targets[0].Name
	for _, path := range []string{"/targets?target=" + target, "/targets?q=AS" + fmt.Sprint(f.applied.Snapshot.Targets[0].ASNs[0].ASN), "/runs/1"} {
		_, body := b.get(path)
		for _, raw := range []string{xssHolder, xssEvidence} {
			if strings.Contains(body, raw) {
				t.Errorf("%s shows %s unescaped", path, raw)
			}
		}
		if path != "/runs/1" && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the holder name as text", path)
		}
	}
}

func TestActingNeedsSessionAndCSRF(t *testing.T) {
	const token = "s3cret-token"
	f := newFixture(t)
	b := serve(t, f, token)
	tok := b.csrf("/login")
	if _, body := b.get("/runs/2"); strings.Contains(body, `id="approve"`) || !strings.Contains(body, "Sign in to approve") {
		t.Fatal("the held run offers Approve before sign-in")
	}
	// No CSRF token: refused, whatever the session.
	if resp, _ := b.post("/runs/2/approve", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve without CSRF token: %d", resp.StatusCode)
	}
	// CSRF token, no session: refused.
	if resp, _ := b.post("/runs/2/approve", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("approve without session: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/runs", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusUnauthorized || f.triggers != 0 {
		t.Errorf("trigger without session: %d, %d triggers", resp.StatusCode, f.triggers)
	}
	// A wrong token does not sign in.
	if resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {"wrong"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a wrong token: %d", resp.StatusCode)
	}
	// Sign-in needs the CSRF token too (no login CSRF).
	if resp, _ := b.post("/login", url.Values{"token": {token}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d", resp.StatusCode)
	}
	resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {token}, "next": {"//evil.example/x"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?") {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc string
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, sessionCookie+"=") {
			sc = h
		}
	}
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("session cookie %q", sc)
	}
	if len(f.decided) != 0 {
		t.Fatalf("decided before sign-in: %v", f.decided)
	}
	// Signed in, still no CSRF token: refused.
	if resp, _ := b.post("/runs/2/reject", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reject without CSRF token when signed in: %d", resp.StatusCode)
	}
	// A token from another cookie does not pass.
	other := serve(t, f, token)
	if resp, _ := b.post("/runs/2/reject", url.Values{"csrf": {other.csrf("/")}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reject with another browser's CSRF token: %d", resp.StatusCode)
	}
	if _, body := b.get("/runs/2"); !strings.Contains(body, `id="approve"`) {
		t.Fatal("no Approve button after sign-in")
	}
	resp, _ = b.post("/runs/2/approve", url.Values{"csrf": {tok}, "by": {"alice"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs/2?done=approved" {
		t.Fatalf("approve: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(f.decided) != 1 || !strings.HasPrefix(f.decided[0], "approved 2 by alice (console ") {
		t.Fatalf("decided: %v", f.decided)
	}
	// Deciding again is a conflict, shown as such.
	if resp, body := b.post("/runs/2/reject", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already approved") {
		t.Errorf("reject after approve: %d", resp.StatusCode)
	}
	// The bearer header works without a cookie or CSRF token (curl).
	if resp, _ := other.post("/runs", url.Values{}, "Authorization", "Bearer "+token); resp.StatusCode != http.StatusSeeOther || f.triggers != 1 {
		t.Errorf("trigger with bearer header: %d, %d triggers", resp.StatusCode, f.triggers)
	}
	if resp, _ := other.post("/runs", url.Values{}, "Authorization", "Bearer wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("trigger with a wrong bearer header: %d", resp.StatusCode)
	}
	// Sign out ends the session.
	b.post("/logout", url.Values{"csrf": {tok}})
	if resp, _ := b.post("/runs", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("trigger after sign-out: %d", resp.StatusCode)
	}
}

func TestSignInLimited(t *testing.T) {
	b := serve(t, newFixture(t), "right")
	tok := b.csrf("/login")
	code := 0
	for range maxFailures + 1 {
		resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {"wrong"}})
		code = resp.StatusCode
	}
	if code != http.StatusTooManyRequests {
		t.Fatalf("after %d wrong tokens: %d", maxFailures+1, code)
	}
	if resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {"right"}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the right token inside the lock-out: %d", resp.StatusCode)
	}
}

// TestLargeRunPaged: a run adding 100k prefixes shows a bounded first page
// and pages the rest.
func TestLargeRunPaged(t *testing.T) {
	f := newFixture(t)
	b := serve(t, f, "")
	target := f.applied.Intent.Targets[0].Name
	_, body := b.get("/runs/2")
	if len(body) > 300<<10 || !strings.Contains(body, fmt.Sprintf("All %d added prefixes", bigRun)) {
		t.Fatalf("run page: %d bytes", len(body))
	}
	if n := strings.Count(body, "20.0."); n != changesPreview {
		t.Errorf("run page lists %d of the added prefixes, want %d", n, changesPreview)
	}
	_, body = b.get(fmt.Sprintf("/runs/2/changes?target=%s&kind=added&offset=%d", target, bigRun-50))
	if !strings.Contains(body, "20.1.134.159/32") || !strings.Contains(body, fmt.Sprintf("99951–100000 of %d", bigRun)) || strings.Contains(body, `rel="next"`) {
		t.Errorf("last page of the added prefixes is wrong")
	}
	_, body = b.get(fmt.Sprintf("/runs/2/changes?target=%s&kind=added", target))
	if len(body) > 300<<10 || !strings.Contains(body, `rel="next"`) || strings.Count(body, "<tr>") != changesPerPage+1 {
		t.Errorf("first page of the added prefixes: %d bytes, %d rows", len(body), strings.Count(body, "<tr>"))
	}
}

func TestLookup(t *testing.T) {
	f := newFixture(t)
	in := f.applied.Intent
	tg := in.Targets[len(in.Targets)-1]
	p := tg.Prefixes[0].Prefix
	inside := p.Addr().Next()
	ex := explain.New(f.applied.Snapshot, in)
	e, err := ex.Query(inside.String())
	if err != nil || !e.Blocked || !e.IsAddr() || !slices.ContainsFunc(e.Matches, func(m explain.Match) bool { return m.Prefix == p && m.Target == tg.Name }) {
		t.Fatalf("%s: %+v %v", inside, e, err)
	}
	e, err = ex.Query("192.0.2.1")
	if err != nil || e.Blocked || len(e.Inside) != 0 {
		t.Fatalf("192.0.2.1 (documentation space): %+v %v", e, err)
	}
	// A shorter prefix around a target prefix is partly blocked.
	around := netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()
	if e, err = ex.Query(around.String()); err != nil ||
		!e.Blocked && !slices.ContainsFunc(e.Inside, func(m explain.Match) bool { return m.Prefix == p }) {
		t.Fatalf("%s: %+v %v", around, e, err)
	}
	if e, err = ex.Query(fmt.Sprintf("AS%d", tg.ASNs[0])); err != nil || len(e.ASNs) != 1 || e.ASNs[0].Target != tg.Name || !e.ASNs[0].Filtered {
		t.Fatalf("AS%d: %+v %v", tg.ASNs[0], e, err)
	}
	if _, err := ex.Query("example.com"); err == nil {
		t.Fatal("a host name was taken for an address")
	}
	b := serve(t, f, "")
	if _, body := b.get("/targets?q=" + url.QueryEscape(inside.String())); !strings.Contains(body, "blocked</span>") || !strings.Contains(body, p.String()) {
		t.Error("the lookup page does not say which prefix blocks the address")
	}
}

// The search marks what a source the policy excludes said about a dropped
// prefix, as `asfence explain` does: with the policy, its statements show as
// excluded; without one they could only show as attesting.
func TestLookupMarksExcludedSources(t *testing.T) {
	f := newFixture(t)
	tg := f.applied.Snapshot.Targets[0]
	p := tg.Prefixes[0]
	pol := policy.DefaultPolicy()
	for _, x := range p.Evidence {
		pol.Sources.Exclude = append(pol.Sources.Exclude, x.Source)
	}
	in := pol.Apply(f.applied.Snapshot)
	if !slices.ContainsFunc(in.Dropped, func(d policy.Drop) bool {
		return d.Prefix == p.Prefix.String() && d.Reason == policy.ReasonExcludedSource
	}) {
		t.Fatalf("%s is not dropped for its excluded sources (%d drops)", p.Prefix, len(in.Dropped))
	}
	f.applied = &Applied{RunID: 1, At: fixtureTime, Intent: in, Snapshot: f.applied.Snapshot}
	b := serve(t, f, "")
	q := "/targets?q=" + url.QueryEscape(p.Prefix.String())
	if _, body := b.get(q); strings.Contains(body, `data-role="excluded"`) || !strings.Contains(body, "The policy decided not to block") {
		t.Fatalf("without the policy: the page marks excluded statements, or does not show the drop")
	}
	f.applied.Policy = &pol
	if _, body := b.get(q); !strings.Contains(body, `data-role="excluded"`) || strings.Contains(body, `data-role="attests"`) {
		t.Errorf("with the policy: %s's statements are not all marked excluded", p.Prefix)
	}
}

func TestFileHeader(t *testing.T) {
	f := newFixture(t)
	for _, v := range f.vendors {
		fh, err := os.Open(filepath.Join(f.dir, filters.FileName(v)))
		if err != nil {
			t.Fatal(err)
		}
		h := fileHeader(fh)
		fh.Close()
		if len(h) < 4 || h[0] != "Generated by asfence test for "+v+". Do not edit: regenerate." || !strings.HasPrefix(h[1], "Snapshot: ") {
			t.Errorf("%s header: %q", v, h)
		}
	}
	b := serve(t, f, "")
	resp, body := b.get("/configs/asfence-bird.conf/download")
	data, _ := os.ReadFile(filepath.Join(f.dir, "asfence-bird.conf"))
	if resp.StatusCode != http.StatusOK || body != string(data) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("download: %d, %d bytes of %d, %q", resp.StatusCode, len(body), len(data), resp.Header.Get("Content-Disposition"))
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/runs/2": "/runs/2", "/runs?outcome=held": "/runs?outcome=held", "//evil.example/x": "/",
		"https://evil.example/": "/", "/\\evil.example": "/", "": "/", "javascript:alert(1)": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionEnds: a session ends when the token changes (config reload)
// and after its lifetime.
func TestSessionEnds(t *testing.T) {
	var mu sync.Mutex
	token, now := "first-token", fixtureTime
	f := newFixture(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	con, err := New(f, Options{Log: logrus.NewEntry(log),
		Token: func() string { mu.Lock(); defer mu.Unlock(); return token },
		Now:   func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	tok := b.csrf("/login")
	signIn := func() {
		mu.Lock()
		tk := token
		mu.Unlock()
		if resp, _ := b.post("/login", url.Values{"csrf": {tok}, "token": {tk}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	signedIn := func() bool {
		_, body := b.get("/")
		return strings.Contains(body, "Sign out")
	}
	signIn()
	if !signedIn() {
		t.Fatal("not signed in")
	}
	mu.Lock()
	token = "second-token"
	mu.Unlock()
	if signedIn() {
		t.Error("the session outlived a token change")
	}
	signIn()
	mu.Lock()
	now = now.Add(sessionLifetime + time.Second)
	mu.Unlock()
	if signedIn() {
		t.Error("the session outlived its lifetime")
	}
}

// xssRouter is a BMP router's sysName (router data, as a registry's holder
// name is registry data).
const xssRouter = `<script>alert(3)</script>`

// BMP makes the fixture an api.BMPBackend, as the daemon is.
func (f *fixture) BMP(context.Context) (*api.BMP, error) {
	return &api.BMP{Listen: "[::]:11019", Routers: []api.BMPRouter{
		{Address: "192.0.2.31", Name: xssRouter, State: "up", Since: fixtureTime, Connections: 1, Peers: 2, Routes: 1234,
			Messages: 99, LastMessage: fixtureTime.Add(time.Minute)},
		{Address: "192.0.2.32", State: "dropped", Since: fixtureTime, Errors: 1,
			LastError: "bmp message of 4294967295 bytes " + xssEvidence, LastErrorAt: fixtureTime.Add(2 * time.Minute)},
	}, Watch: api.WatchStatus{On: true, Routes: 40, Candidates: 3, Applied: 17, Held: 1, Refused: 2, WindowUsed: 17,
		MaxAdditions: 100, Window: "10m0s", MinSources: 2, LastRun: 2, LastOutcome: "held"}}, nil
}

// TestOverviewBMP: the BMP routers and the live watch are on the overview,
// as /api/v1/bmp gives them, router data escaped; feed neighbors are marked
// among the BGP peers.
func TestOverviewBMP(t *testing.T) {
	b := serve(t, newFixture(t), "")
	_, body := b.get("/")
	for _, want := range []string{
		`<tr data-router="192.0.2.31" data-state="up">`, `<span class="ok">up</span>`,
		`<td class="num" data-count="peers">2</td><td class="num" data-count="routes">1234</td>`,
		`&lt;script&gt;alert(3)&lt;/script&gt;`,
		`<tr data-router="192.0.2.32" data-state="dropped">`, `<span class="bad">dropped</span>`,
		`bmp message of 4294967295 bytes &lt;img src=x onerror=alert(2)&gt;`, `(1 errors)`,
		`<dd data-count="routes">40 `, `<dd data-count="candidates">3 `, `<dd data-count="applied">17 `,
		`<dd data-count="held">1 `, `<dd data-count="refused">2 `, `<dd data-count="window">17 of 100 per 10m0s; seen from at least 2 routers or peers</dd>`,
		`<a href="/runs/2">run 2</a> held`, `<a href="/runs?trigger=watch">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
	for _, raw := range []string{xssRouter, xssEvidence} {
		if strings.Contains(body, raw) {
			t.Errorf("overview shows %s unescaped", raw)
		}
	}
}

// TestOverviewFeedPeer: a feed neighbor is listed among the BGP peers and
// marked as a feed.
func TestOverviewFeedPeer(t *testing.T) {
	f := &feedFixture{newFixture(t)}
	c, err := New(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if !strings.Contains(body, `<tr data-peer="192.0.2.40" data-feed="true"><td class="mono">192.0.2.40 <span class="tag"`) {
		t.Error("the feed neighbor is not marked as a feed")
	}
	if strings.Contains(body, `<tr data-peer="192.0.2.21" data-feed`) {
		t.Error("an RTBH peer is marked as a feed")
	}
	// Without api.BMPBackend, no BMP section.
	if strings.Contains(body, `id="bmp"`) || strings.Contains(body, `id="watch"`) {
		t.Error("a backend without BMP shows a BMP section")
	}
}

// feedFixture adds a feed neighbor; embedding the fixture as a Backend
// hides its BMP method.
type feedFixture struct{ Backend }

func (x *feedFixture) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	ps, err := x.Backend.Peers(ctx)
	return append(ps, bgp.PeerStatus{Address: "192.0.2.40", ASN: 64520, State: "established", Established: true, Feed: true,
		Sent: map[string]int{}, Received: map[string]int{"ipv4-unicast": 812}}), err
}

// TestRunsTriggerWatch: runs the live watch made are listed with their
// trigger, and the trigger filter selects them.
func TestRunsTriggerWatch(t *testing.T) {
	f := newFixture(t)
	at := fixtureTime.Add(2 * time.Hour)
	f.add(&store.Run{Trigger: "watch", Start: at, End: at.Add(time.Second), Outcome: store.Applied,
		Diff: store.DiffSummary{Added: 1}}, &store.Detail{})
	b := serve(t, f, "")
	_, body := b.get("/runs?trigger=watch")
	if !strings.Contains(body, `<tr data-run="3" data-outcome="applied">`) || !strings.Contains(body, `<td>watch</td>`) {
		t.Error("the watch run is not listed under trigger=watch")
	}
	if strings.Contains(body, `<tr data-run="1"`) || strings.Contains(body, `<tr data-run="2"`) {
		t.Error("trigger=watch lists runs of other triggers")
	}
	if !strings.Contains(body, `<option value="watch">`) {
		t.Error("the trigger filter does not offer watch")
	}
}
