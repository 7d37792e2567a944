// Package console is the review console: server-rendered HTML pages on the
// daemon's API listener where engineers see what is blocked and why, page
// through runs and their changes, read the vendor files, and approve or
// reject held changes.
//
// Every page works without JavaScript (a small script only adds
// conveniences). Responses carry a Content-Security-Policy that allows
// scripts and styles from the console itself only; templates escape every
// value (registry data included). Reading follows the API (open where the
// API is open); approving, rejecting and triggering need the API token:
// a sign-in form sets an HttpOnly, SameSite=Strict session cookie, or a
// request carries "Authorization: Bearer TOKEN". Every form carries a CSRF
// token bound to an HttpOnly cookie.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// Backend is what the console reads and acts on; the daemon implements it.
type Backend interface {
	// Status is what GET /api/v1/status answers.
	Status(ctx context.Context) (*api.Status, error)
	// Runs lists runs newest first.
	Runs(ctx context.Context, f store.ListOptions) ([]*store.Run, error)
	// RunSummary is one run's record (counts, guard, decision, outputs).
	RunSummary(ctx context.Context, id uint64) (*store.Run, error)
	// RunChanges is a page of one target's changed prefixes or ASNs.
	RunChanges(ctx context.Context, id uint64, q ChangeQuery) (*Changes, error)
	// RunDiffFiles lists the vendor files whose diff a run recorded.
	RunDiffFiles(ctx context.Context, id uint64) ([]store.DiffFile, error)
	// RunDiffLines reads the lines [offset, offset+limit) of one file's
	// recorded diff, and counts its lines.
	RunDiffLines(ctx context.Context, id uint64, file string, offset, limit int) ([]string, int, error)
	Trigger(ctx context.Context, by string) (*store.Run, error)
	Approve(ctx context.Context, id uint64, by string) (*store.Run, error)
	Reject(ctx context.Context, id uint64, by string) (*store.Run, error)
	// Applied is the Intent in force and the Snapshot it came from (nil
	// before the first applied run).
	Applied(ctx context.Context) (*Applied, error)
	// Outputs lists the configured vendor files.
	Outputs(ctx context.Context) ([]Output, error)
	// OpenOutput opens one of the files Outputs lists (by its file name).
	OpenOutput(ctx context.Context, file string) (*os.File, error)
	Peers(ctx context.Context) ([]bgp.PeerStatus, error)
	// A Backend that also implements api.BMPBackend (as the daemon does)
	// has its BMP routers and live watch on the overview.
}

// Change kinds for ChangeQuery.
const (
	Added       = "added"
	Removed     = "removed"
	AddedASNs   = "added-asns"
	RemovedASNs = "removed-asns"
)

// ChangeQuery selects a page of a run's change.
type ChangeQuery struct {
	Target string
	// Kind is Added, Removed, AddedASNs or RemovedASNs.
	Kind          string
	Offset, Limit int
}

// Changes is a page of a run's change for one target.
type Changes struct {
	// Total counts the whole list (not only the page).
	Total    int
	Prefixes []asn.Prefix
	ASNs     []uint32
}

// Applied is the Intent in force with its Snapshot (evidence of ASNs,
// holder names).
type Applied struct {
	RunID    uint64
	At       time.Time
	Intent   *policy.Intent
	Snapshot *asn.Snapshot
	// Policy is the policy in force (nil if unknown): the search marks the
	// statements of the sources it excludes, as `asfence explain` does.
	Policy *policy.Policy
}

// Output is one configured vendor file.
type Output struct {
	Vendor  string
	File    string
	Size    int64
	ModTime time.Time
	// Error says why the file cannot be read (e.g. not written yet).
	Error string
}

// Options configure the console.
type Options struct {
	// Token returns the API token in force ("" when none is configured:
	// then, as in the API, acting needs no sign-in, only the CSRF token).
	Token func() string
	// Log receives sign-ins and decisions (nil: logrus' standard logger).
	Log *logrus.Entry
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Version is shown in the footer.
	Version string
}

// Console serves the pages.
type Console struct {
	b     Backend
	opts  Options
	pages map[string]*template.Template
	auth  *authenticator
	mux   *http.ServeMux
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New builds the console.
func New(b Backend, o Options) (*Console, error) {
	if o.Token == nil {
		o.Token = func() string { return "" }
	}
	if o.Log == nil {
		o.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(o.Token, o.Now)
	if err != nil {
		return nil, err
	}
	c := &Console{b: b, opts: o, pages: pages, auth: auth, mux: http.NewServeMux()}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServer(http.FS(static))
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(files)))
	c.mux.HandleFunc("GET /{$}", c.overview)
	c.mux.HandleFunc("GET /runs", c.runs)
	c.mux.HandleFunc("POST /runs", c.act(c.trigger))
	c.mux.HandleFunc("GET /runs/{id}", c.run)
	c.mux.HandleFunc("GET /runs/{id}/changes", c.changes)
	c.mux.HandleFunc("GET /runs/{id}/diff", c.diff)
	c.mux.HandleFunc("POST /runs/{id}/approve", c.act(c.decide(true)))
	c.mux.HandleFunc("POST /runs/{id}/reject", c.act(c.decide(false)))
	c.mux.HandleFunc("GET /targets", c.targets)
	c.mux.HandleFunc("GET /configs", c.configs)
	c.mux.HandleFunc("GET /configs/{file}", c.config)
	c.mux.HandleFunc("GET /configs/{file}/download", c.download)
	c.mux.HandleFunc("GET /login", c.loginForm)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.logout)
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("no page %s", r.URL.Path))
	})
}

// ServeHTTP sets the security headers and serves the pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the console's own scripts, styles and
// images only: no inline script, no inline event handler, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Version string
	// CSRF is the form token; SignedIn and NeedSignIn drive the header.
	CSRF       string
	SignedIn   bool
	NeedSignIn bool
	Path       string
	Flash      string
	Data       any
}

// render writes a page; a template error after the first byte can only be
// logged.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	p := page{Title: title, Nav: name, Version: c.opts.Version, Path: r.URL.RequestURI(), Data: data,
		Flash: flash(r.URL.Query().Get("done"))}
	p.CSRF = c.auth.csrf(w, r)
	p.SignedIn, p.NeedSignIn = c.auth.status(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.opts.Log.WithError(err).WithField("page", name).Warn("console: rendering a page")
	}
}

// flash turns the done= parameter of a redirect after an action into a
// fixed message (never echoing the parameter).
func flash(done string) string {
	switch done {
	case "approved":
		return "The held change was approved and applied."
	case "rejected":
		return "The held change was rejected; the applied set stays."
	case "triggered":
		return "Run started."
	case "signed-in":
		return "Signed in."
	case "signed-out":
		return "Signed out."
	}
	return ""
}

// errorPage is the data of the error template.
type errorPage struct {
	Code    int
	Message string
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	c.render(w, r, code, "error", http.StatusText(code), errorPage{Code: code, Message: err.Error()})
}

// backendError maps the backend's errors to status codes, as the API does.
func (c *Console) backendError(w http.ResponseWriter, r *http.Request, err error) {
	var nh *store.NotHeldError
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.As(err, &nh), errors.Is(err, api.ErrBusy):
		code = http.StatusConflict
	case errors.Is(err, api.ErrNotReady):
		code = http.StatusServiceUnavailable
	}
	c.fail(w, r, code, err)
}

// runID is the {id} path value.
func runID(r *http.Request) (uint64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("run id %q: want a positive number", v)
	}
	return id, nil
}

// intParam reads a non-negative integer query parameter (def when absent).
func intParam(r *http.Request, name string, def, maxV int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxV {
		return 0, fmt.Errorf("%s %q: want a number from 0 to %d", name, v, maxV)
	}
	return n, nil
}
