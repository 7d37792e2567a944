// Package api is the daemon's HTTP API: health, readiness, Prometheus
// metrics, and a JSON API for status, the prefixes in force, run history
// with diffs, triggering runs and deciding held changes.
//
// Mutating endpoints (POST) need "Authorization: Bearer TOKEN" when a token
// is configured; the server refuses to listen on a non-loopback address
// without one. Errors are JSON {"error": "..."} with a fitting status code,
// and a request that is refused changes nothing.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
	"github.com/asfence/asfence/report"
)

// ErrBusy: a run (or a decision) is in progress.
var ErrBusy = errors.New("a run is in progress")

// ErrNotReady: the daemon has not announced its state yet.
var ErrNotReady = errors.New("not ready")

// Backend is what the API serves; the daemon implements it.
type Backend interface {
	Ready() bool
	Status(ctx context.Context) (*Status, error)
	// Applied is the Intent in force (nil before the first applied run).
	Applied() *policy.Intent
	Runs(o store.ListOptions) ([]*store.Run, error)
	// RunChange is one run's record and its change summary (nil: none
	// recorded).
	RunChange(id uint64) (*store.Run, *store.ChangeSummary, error)
	// RunPrefixes calls fn with a page of one target's changed prefixes,
	// a chunk at a time, and returns the length of the whole list.
	RunPrefixes(id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) (int, error)
	// RunDiff calls fn with the lines [offset, offset+limit) (limit < 0:
	// all) of a vendor file's recorded diff, a chunk at a time.
	RunDiff(id uint64, file string, offset, limit int, fn func(string) error) (int, error)
	// RunReport is the report a run kept (nil: none).
	RunReport(id uint64) (*store.Run, *report.Report, error)
	// Trigger starts a run and returns it as started; ErrBusy if one is
	// running.
	Trigger(ctx context.Context, by string) (*store.Run, error)
	Approve(ctx context.Context, id uint64, by string) (*store.Run, error)
	Reject(ctx context.Context, id uint64, by string) (*store.Run, error)
	// Peers lists the BGP neighbors, as the speaker reports them.
	Peers(ctx context.Context) ([]bgp.PeerStatus, error)
}

// Status is GET /api/v1/status.
type Status struct {
	Version   string    `json:"version"`
	Ready     bool      `json:"ready"`
	StartedAt time.Time `json:"started_at"`
	Schedule  string    `json:"schedule"`
	NextRun   time.Time `json:"next_run,omitzero"`
	// Running is the id of the run in progress (0: none).
	Running uint64 `json:"running,omitempty"`
	// Applied describes the Intent in force.
	Applied     *AppliedInfo `json:"applied"`
	LastRun     *store.Run   `json:"last_run"`
	LastSuccess time.Time    `json:"last_success,omitzero"`
	// Degraded: the last run had failed sources.
	Degraded bool `json:"degraded"`
	// OutputsError: the vendor files do not match the applied set (the
	// daemon is not ready until a run writes them).
	OutputsError  string               `json:"outputs_error,omitempty"`
	FailedSources []store.SourceStatus `json:"failed_sources"`
	Held          []*store.Run         `json:"held"`
	Peers         *PeerSummary         `json:"peers,omitempty"`
}

// AppliedInfo describes the Intent in force.
type AppliedInfo struct {
	RunID        uint64              `json:"run_id"`
	At           time.Time           `json:"at"`
	SnapshotTime time.Time           `json:"snapshot_time"`
	Targets      []store.TargetCount `json:"targets"`
}

// PeerSummary counts BGP sessions.
type PeerSummary struct {
	Total       int    `json:"total"`
	Established int    `json:"established"`
	Error       string `json:"error,omitempty"`
}

// Target is one entry of GET /api/v1/targets.
type Target struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	ID          uint32   `json:"id"`
	IPv4        int      `json:"ipv4"`
	IPv6        int      `json:"ipv6"`
	ASNs        []uint32 `json:"asns"`
}

// Prefixes is GET /api/v1/prefixes.
type Prefixes struct {
	Target   string       `json:"target,omitempty"`
	Family   string       `json:"family,omitempty"`
	Count    int          `json:"count"`
	Prefixes []asn.Prefix `json:"prefixes"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Options configure the server.
type Options struct {
	// Listen is host:port.
	Listen string
	// Token, when set, is required on mutating endpoints.
	Token string
	// Metrics serves /metrics.
	Metrics http.Handler
	// Console, when set, serves every path outside /api/, /healthz,
	// /readyz and /metrics (the review console).
	Console http.Handler
	// Limits bound what clients can hold of the server (zero fields: the
	// defaults).
	Limits Limits
}

// Limits bound what one client, or many, can hold of the server, so that
// slow or idle clients cannot use up the daemon's file descriptors.
type Limits struct {
	// ReadTimeout bounds reading one request, headers and body
	// (default DefaultReadTimeout). The headers alone get at most
	// DefaultReadHeaderTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds one response, from the end of its request's
	// headers (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConnections caps the connections served at once (default
	// DefaultMaxConnections); more wait in the kernel's listen queue,
	// holding no descriptor of the process, until one closes.
	MaxConnections int
	// MaxBodyBytes caps a request body (default DefaultMaxBodyBytes): a
	// larger one gets 413.
	MaxBodyBytes int64
}

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = time.Minute
	DefaultMaxConnections    = 256
	DefaultMaxBodyBytes      = 64 << 10
)

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// Server is the HTTP API.
type Server struct {
	b       Backend
	metrics http.Handler
	console http.Handler
	mu      sync.RWMutex
	token   string
	limits  Limits
	srv     *http.Server
	ln      net.Listener
}

// Loopback reports whether host (an IP or "localhost") is a loopback
// address.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// New checks the options and builds the server (not yet listening).
func New(b Backend, o Options) (*Server, error) {
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("api listen %q: %w", o.Listen, err)
	}
	if !Loopback(host) && o.Token == "" {
		return nil, fmt.Errorf("api listen %s: not a loopback address and no api.token_file: refusing to serve mutating endpoints without a token", o.Listen)
	}
	l := o.Limits.withDefaults()
	s := &Server{b: b, metrics: o.Metrics, console: o.Console, token: o.Token, limits: l}
	s.srv = &http.Server{Addr: o.Listen, Handler: s.Handler(),
		ReadHeaderTimeout: min(DefaultReadHeaderTimeout, l.ReadTimeout),
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
	return s, nil
}

// SetToken replaces the token (config reload).
func (s *Server) SetToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

// Token is the token in force.
func (s *Server) Token() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.token
}

// Listen binds the address (so that a bind failure is reported at start).
// At most Limits.MaxConnections connections are accepted at once.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	s.ln = netutil.LimitListener(ln, s.limits.MaxConnections)
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.srv.Addr
	}
	return s.ln.Addr().String()
}

// Serve serves until Shutdown; it returns nil after a shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// Close releases the bound address of a server that never served (a start
// that failed after Listen). Safe on a nil server.
func (s *Server) Close() error {
	if s == nil || s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// Shutdown stops the server, letting requests in flight finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// route maps methods to handlers for one path; other methods get 405.
type route map[string]http.HandlerFunc

func (rt route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := rt[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = rt[http.MethodGet]
	}
	if !ok {
		var allow []string
		for m := range rt {
			allow = append(allow, m)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
		return
	}
	h(w, r)
}

// Handler returns the routes, with request bodies capped at
// Limits.MaxBodyBytes.
func (s *Server) Handler() http.Handler { return s.limitBody(s.routes()) }

// limitBody refuses a body larger than Limits.MaxBodyBytes with 413: at
// once when its Content-Length says so, else when a handler reads past
// the limit.
func (s *Server) limitBody(h http.Handler) http.Handler {
	max := s.limits.withDefaults().MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			// Not reading the body: the connection closes after the answer.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes: at most %d accepted", r.ContentLength, max))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

// routes maps the paths to their handlers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", route{http.MethodGet: s.healthz})
	mux.Handle("/readyz", route{http.MethodGet: s.readyz})
	if s.metrics != nil {
		mux.Handle("/metrics", route{http.MethodGet: s.metrics.ServeHTTP})
	}
	mux.Handle("/api/v1/status", route{http.MethodGet: s.status})
	mux.Handle("/api/v1/targets", route{http.MethodGet: s.targets})
	mux.Handle("/api/v1/prefixes", route{http.MethodGet: s.prefixes})
	mux.Handle("/api/v1/runs", route{http.MethodGet: s.runs, http.MethodPost: s.auth(s.trigger)})
	mux.Handle("/api/v1/runs/{id}", route{http.MethodGet: s.run})
	mux.Handle("/api/v1/runs/{id}/prefixes", route{http.MethodGet: s.runPrefixes})
	mux.Handle("/api/v1/runs/{id}/diffs/{file}", route{http.MethodGet: s.runDiff})
	mux.Handle("/api/v1/runs/{id}/report", route{http.MethodGet: s.runReport})
	mux.Handle("/api/v1/runs/{id}/approve", route{http.MethodPost: s.auth(s.decide(true))})
	mux.Handle("/api/v1/runs/{id}/reject", route{http.MethodPost: s.auth(s.decide(false))})
	mux.Handle("/api/v1/peers", route{http.MethodGet: s.peers})
	mux.Handle("/api/v1/bmp", route{http.MethodGet: s.bmp})
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s", r.URL.Path))
	}
	if s.console != nil {
		mux.HandleFunc("/api/", notFound)
		mux.Handle("/", s.console)
	} else {
		mux.HandleFunc("/", notFound)
	}
	return mux
}

// auth requires the bearer token on mutating endpoints.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		tok := s.token
		s.mu.RUnlock()
		if tok == "" {
			h(w, r)
			return
		}
		if !HasBearer(r, tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="asfence"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

// HasBearer reports whether r carries "Authorization: Bearer TOKEN" with
// token tok (not empty). The scheme is case-insensitive (RFC 9110 §11.1):
// "bearer" and "BEARER" are accepted too.
func HasBearer(r *http.Request, tok string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return tok != "" && ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tok)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}

// backendError maps the backend's errors to status codes.
func backendError(w http.ResponseWriter, err error) {
	var nh *store.NotHeldError
	var ce *store.CorruptError
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &nh), errors.Is(err, ErrBusy):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.As(err, &ce):
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.b.Ready() {
		writeError(w, http.StatusServiceUnavailable, "not ready: the applied set has not been announced yet, or the vendor files do not match it (status: outputs_error)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Status(r.Context())
	if err != nil {
		backendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) targets(w http.ResponseWriter, _ *http.Request) {
	out := []Target{}
	if in := s.b.Applied(); in != nil {
		for i := range in.Targets {
			t := &in.Targets[i]
			asns := t.ASNs
			if asns == nil {
				asns = []uint32{}
			}
			out = append(out, Target{Name: t.Name, Description: t.Description, ID: t.ID,
				IPv4: len(t.Exact(prefixset.IPv4)), IPv6: len(t.Exact(prefixset.IPv6)), ASNs: asns})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": out})
}

func (s *Server) prefixes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if bad := unknownParams(q, "target", "family"); bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	target, fam := q.Get("target"), q.Get("family")
	var want prefixset.Family
	switch fam {
	case "":
	case "ipv4", "4":
		want = prefixset.IPv4
	case "ipv6", "6":
		want = prefixset.IPv6
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("family %q: want ipv4 or ipv6", fam))
		return
	}
	in := s.b.Applied()
	out := Prefixes{Target: target, Family: fam, Prefixes: []asn.Prefix{}}
	found := target == ""
	if in != nil {
		for i := range in.Targets {
			t := &in.Targets[i]
			if target != "" && t.Name != target {
				continue
			}
			found = true
			for _, p := range t.Prefixes {
				if want == 0 || prefixset.Of(p.Prefix) == want {
					out.Prefixes = append(out.Prefixes, p)
				}
			}
		}
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("target %q has no applied prefixes (see /api/v1/targets)", target))
		return
	}
	out.Count = len(out.Prefixes)
	writeJSON(w, http.StatusOK, out)
}

func unknownParams(q map[string][]string, known ...string) string {
	for k := range q {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return fmt.Sprintf("unknown parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return ""
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if bad := unknownParams(q, "limit", "before", "outcome"); bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	var o store.ListOptions
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1-1000", v))
			return
		}
		o.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("before %q: want a run id", v))
			return
		}
		o.Before = n
	}
	switch v := q.Get("outcome"); v {
	case "", store.Running, store.Applied, store.Held, store.Unchanged, store.Failed:
		o.Outcome = v
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("outcome %q: want running, applied, held, unchanged or failed", v))
		return
	}
	rs, err := s.b.Runs(o)
	if err != nil {
		backendError(w, err)
		return
	}
	if rs == nil {
		rs = []*store.Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": rs})
}

func runID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v := r.PathValue("id")
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("run id %q: want a positive number", v))
		return 0, false
	}
	return id, true
}

// reportCSP lets the HTML report's inline style apply and nothing else
// load or run.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

// runReport is GET /api/v1/runs/{id}/report: the report of the run's
// snapshot and Intent, as JSON or (?format=html) the self-contained page.
func (s *Server) runReport(w http.ResponseWriter, r *http.Request) {
	id, ok := runID(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json or html", format))
		return
	}
	_, rep, err := s.b.RunReport(id)
	if err != nil {
		backendError(w, err)
		return
	}
	if rep == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("run %d has no report (it failed before resolving, or ran before reports were kept)", id))
		return
	}
	if format != "html" {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", reportCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b.Bytes()) // the client went away: nothing to do
}

// decision is the optional body of approve/reject.
type decision struct {
	By string `json:"by"`
}

// readDecision reads the optional JSON body; by defaults to the client
// address.
func readDecision(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return "", false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading body: %v", err))
		return "", false
	}
	if len(body) > 4096 {
		writeError(w, http.StatusRequestEntityTooLarge, "body larger than 4096 bytes")
		return "", false
	}
	var d decision
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("body: %v (want {\"by\": \"name\"} or nothing)", err))
			return "", false
		}
		if len(d.By) > 200 || strings.ContainsAny(d.By, "\r\n") {
			writeError(w, http.StatusBadRequest, "by: at most 200 characters on one line")
			return "", false
		}
	}
	by := "api " + r.RemoteAddr
	if d.By != "" {
		by = d.By + " (api " + r.RemoteAddr + ")"
	}
	return by, true
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	by, ok := readDecision(w, r)
	if !ok {
		return
	}
	run, err := s.b.Trigger(r.Context(), by)
	if err != nil {
		backendError(w, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/runs/%d", run.ID))
	writeJSON(w, http.StatusAccepted, map[string]any{"run": run})
}

func (s *Server) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := runID(w, r)
		if !ok {
			return
		}
		by, ok := readDecision(w, r)
		if !ok {
			return
		}
		var run *store.Run
		var err error
		if approve {
			run, err = s.b.Approve(r.Context(), id, by)
		} else {
			run, err = s.b.Reject(r.Context(), id, by)
		}
		if err != nil {
			backendError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"run": run})
	}
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	ps, err := s.b.Peers(r.Context())
	if err != nil {
		backendError(w, err)
		return
	}
	if ps == nil {
		ps = []bgp.PeerStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"peers": ps})
}
