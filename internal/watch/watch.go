// Package watch is the live watch: it follows the routes the operator's
// routers see (BMP, or a BGP feed neighbor) and turns every route
// originated by a target's ASN that is not yet blocked into a candidate,
// which the daemon applies as a delta within seconds, or holds for
// approval when the live guard says the batch is too large.
//
// Only the origin counts: the last AS of the AS path. A target ASN seen in
// transit never makes a candidate, and a path ending in an AS_SET (origin
// 0) makes none. The watch keeps, per prefix, only the sightings of routes
// whose origin is a target ASN (router, peer, path, first seen): a full
// table from several routers costs a map lookup per route, not memory.
//
// Withdrawals never unblock anything: a prefix the watch added stays
// applied until the next scheduled run decides (Carry).
package watch

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// Route is one route a router or feed neighbor announced or withdrew.
type Route struct {
	// Source names who saw it: "bmp:<router>" or "feed:<neighbor>" (the
	// evidence source of candidates).
	Source string
	// Peer is the router's BGP peer the route came from (for a feed: the
	// neighbor itself); PeerAS its AS.
	Peer   netip.Addr
	PeerAS uint32
	Prefix netip.Prefix
	// Origin is the last AS of an AS path ending in an AS_SEQUENCE (0:
	// none).
	Origin   uint32
	Path     []uint32
	Withdraw bool
	At       time.Time
}

// Evidence sources the watch gives, by kind.
const (
	KindBMP  = "bmp"
	KindFeed = "feed"
)

// IsWatchSource reports whether an evidence source is the watch's.
func IsWatchSource(source string) bool {
	return strings.HasPrefix(source, KindBMP+":") || strings.HasPrefix(source, KindFeed+":")
}

// Candidate is a target prefix seen originated by one of the target's
// ASNs, with one evidence per source (router and peer) that saw it.
type Candidate struct {
	Target   string
	Prefix   netip.Prefix
	Origins  []uint32
	Evidence []asn.Evidence
	// FirstSeen is the earliest sighting.
	FirstSeen time.Time
}

// Config is the live guard.
type Config struct {
	// MaxAdditions applied without approval per Window (0: every batch is
	// held).
	MaxAdditions int
	Window       time.Duration
	// MinSources: a candidate needs sightings from at least this many
	// routers/peers (default 1).
	MinSources int
	// Quiet is how long the watch waits for a burst to end before it
	// proposes a batch (default 200 ms), at most MaxDelay after the first
	// new candidate (default 1 s).
	Quiet, MaxDelay time.Duration
	// Retry is the wait after a busy daemon or a failed apply (default 1 s).
	Retry time.Duration
}

// Defaults.
const (
	DefaultMaxAdditions = 100
	DefaultWindow       = 10 * time.Minute
	DefaultMinSources   = 1
	defaultQuiet        = 200 * time.Millisecond
	defaultMaxDelay     = time.Second
	defaultRetry        = time.Second
	// tick re-checks held changes (decided or superseded) and retries.
	tick = 5 * time.Second
)

// Outcomes of a batch.
const (
	Applied = "applied"
	Held    = "held"
	Refused = "refused" // the policy dropped every candidate
)

// Result is what the daemon did with a batch.
type Result struct {
	Outcome string
	RunID   uint64
	// Added counts the prefixes added (applied or held).
	Added int
	// Refused are the candidates the policy dropped (key: target and
	// prefix), with the reason: they are not proposed again while seen.
	Refused map[Key]string
}

// Key names a candidate.
type Key struct {
	Target string
	Prefix netip.Prefix
}

// Applier is the daemon's side.
type Applier interface {
	// ApplyWatch passes cands through the policy, records a run with
	// trigger watch, and applies the additions when fits accepts their
	// number, or holds them for approval with fits' reason.
	ApplyWatch(ctx context.Context, cands []Candidate, fits func(added int) (bool, string)) (Result, error)
	// HeldState reports whether a held run is still waiting for a
	// decision, and whether it was rejected.
	HeldState(id uint64) (waiting, rejected bool)
}

// sighting is one source's view of a prefix.
type sighting struct {
	peerAS uint32
	origin uint32
	path   []uint32
	first  time.Time
}

type sightKey struct {
	source string
	peer   netip.Addr
}

// Watch follows routes and proposes candidates.
type Watch struct {
	cfg Config
	log *logrus.Entry
	app Applier
	now func() time.Time

	mu sync.Mutex
	// seen: prefixes originated by target ASNs, per source.
	seen map[netip.Prefix]map[sightKey]sighting
	// asns maps each target ASN to its targets; applied holds the
	// prefixes in force per target.
	asns    map[uint32][]string
	applied map[Key]bool
	// refused and rejected candidates are not proposed again while seen.
	refused  map[Key]string
	rejected map[Key]bool
	// held is the last held batch, waiting for a decision.
	held    map[Key]bool
	heldRun uint64
	// additions applied without approval, for the window.
	additions []addition
	stats     Stats
	kick      chan struct{}
}

type addition struct {
	at time.Time
	n  int
}

// Stats describe the watch (metrics, API).
type Stats struct {
	Routes        int    `json:"routes"`     // target-originated routes followed
	Candidates    int    `json:"candidates"` // waiting to be applied or decided
	Applied       uint64 `json:"applied"`    // prefixes applied without approval
	Held          uint64 `json:"held"`       // batches held
	Refused       uint64 `json:"refused"`    // candidates dropped by the policy
	WindowUsed    int    `json:"window_used"`
	LastRun       uint64 `json:"last_run,omitempty"`
	LastOutcome   string `json:"last_outcome,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	LastDelaySecs float64
}

// New makes a watch; Run drives it.
func New(cfg Config, log *logrus.Entry, app Applier) *Watch {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	cfg.MinSources = max(cfg.MinSources, 1)
	cfg.Quiet = cmp.Or(cfg.Quiet, defaultQuiet)
	cfg.MaxDelay = cmp.Or(cfg.MaxDelay, defaultMaxDelay)
	cfg.Retry = cmp.Or(cfg.Retry, defaultRetry)
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Watch{cfg: cfg, log: log.WithField("component", "watch"), app: app, now: time.Now,
		seen: map[netip.Prefix]map[sightKey]sighting{}, asns: map[uint32][]string{}, applied: map[Key]bool{},
		refused: map[Key]string{}, rejected: map[Key]bool{}, kick: make(chan struct{}, 1)}
}

// SetConfig changes the guard (config reload).
func (w *Watch) SetConfig(cfg Config) {
	n := New(cfg, w.log, nil)
	w.mu.Lock()
	w.cfg = n.cfg
	w.mu.Unlock()
	w.wake()
}

// config is the guard in force (SetConfig changes it under mu).
func (w *Watch) config() Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cfg
}

func (w *Watch) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// SetApplied tells the watch the Intent in force: its targets' origin ASNs
// and prefixes. Routes seen before, whose origin was not a target ASN
// then, are not known to the watch (it keeps only target-originated ones):
// they count from their next update.
func (w *Watch) SetApplied(in *policy.Intent) {
	asns := map[uint32][]string{}
	applied := map[Key]bool{}
	if in != nil {
		for _, t := range in.Targets {
			for _, a := range t.ASNs {
				asns[a] = append(asns[a], t.Name)
			}
			for _, p := range t.Prefixes {
				applied[Key{t.Name, p.Prefix}] = true
			}
		}
	}
	w.mu.Lock()
	w.asns, w.applied = asns, applied
	for p, by := range w.seen {
		for k, s := range by {
			if len(asns[s.origin]) == 0 {
				delete(by, k)
			}
		}
		if len(by) == 0 {
			delete(w.seen, p)
		}
	}
	w.mu.Unlock()
	w.wake()
}

// Observe takes routes from one source, in the order it sent them.
func (w *Watch) Observe(rs []Route) {
	changed := false
	w.mu.Lock()
	for i := range rs {
		r := &rs[i]
		p := r.Prefix.Masked()
		k := sightKey{r.Source, r.Peer}
		if r.Withdraw || len(w.asns[r.Origin]) == 0 || r.Origin == 0 {
			// A withdrawal, or a route that no longer ends in a target
			// ASN: this source no longer sees a target origin there.
			if by, ok := w.seen[p]; ok {
				delete(by, k)
				if len(by) == 0 {
					w.forget(p)
				}
			}
			continue
		}
		by := w.seen[p]
		if by == nil {
			by = map[sightKey]sighting{}
			w.seen[p] = by
		}
		old, had := by[k]
		s := sighting{peerAS: r.PeerAS, origin: r.Origin, path: slices.Clone(r.Path), first: r.At}
		if s.first.IsZero() {
			s.first = w.now()
		}
		if had && old.origin == s.origin {
			s.first = old.first
		} else {
			changed = true
		}
		by[k] = s
	}
	w.mu.Unlock()
	if changed {
		w.wake()
	}
}

// forget drops a prefix no source sees; it runs with mu held.
func (w *Watch) forget(p netip.Prefix) {
	delete(w.seen, p)
	for k := range w.refused {
		if k.Prefix == p {
			delete(w.refused, k)
		}
	}
	for k := range w.rejected {
		if k.Prefix == p {
			delete(w.rejected, k)
		}
	}
}

// Forget drops every sighting of a source (its session ended, a router
// went away). Nothing applied is withdrawn.
func (w *Watch) Forget(source string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, by := range w.seen {
		for k := range by {
			if k.source == source {
				delete(by, k)
			}
		}
		if len(by) == 0 {
			w.forget(p)
		}
	}
}

// Live lists every target prefix currently seen from at least min_sources
// routers/peers, applied or not: what routing says now (see Carry).
func (w *Watch) Live() []Candidate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.candidates(func(Key) bool { return true })
}

// Pending lists the candidates not yet applied, refused or rejected.
func (w *Watch) Pending() []Candidate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pending()
}

func (w *Watch) pending() []Candidate {
	return w.candidates(func(k Key) bool {
		_, refused := w.refused[k]
		return !w.applied[k] && !refused && !w.rejected[k]
	})
}

// candidates builds the candidates that want accepts; mu is held.
func (w *Watch) candidates(want func(Key) bool) []Candidate {
	var out []Candidate
	for p, by := range w.seen {
		// Sightings per target: a prefix may be originated by ASNs of
		// different targets (or seen with different origins).
		per := map[string][]sightKey{}
		for k, s := range by {
			for _, t := range w.asns[s.origin] {
				per[t] = append(per[t], k)
			}
		}
		for t, keys := range per {
			if len(keys) < w.cfg.MinSources || !want(Key{t, p}) {
				continue
			}
			c := Candidate{Target: t, Prefix: p}
			for _, k := range keys {
				s := by[k]
				if !slices.Contains(c.Origins, s.origin) {
					c.Origins = append(c.Origins, s.origin)
				}
				if c.FirstSeen.IsZero() || s.first.Before(c.FirstSeen) {
					c.FirstSeen = s.first
				}
				from := fmt.Sprintf("peer %s (AS%d)", k.peer, s.peerAS)
				if k.peer.IsUnspecified() {
					from = fmt.Sprintf("the router's Loc-RIB (AS%d)", s.peerAS) // BMP, RFC 9069
				}
				c.Evidence = append(c.Evidence, asn.Evidence{Source: k.source, Seen: s.first.UTC(),
					Detail: fmt.Sprintf("originated by AS%d: %s, AS path %s", s.origin, from, pathString(s.path))})
			}
			slices.Sort(c.Origins)
			slices.SortFunc(c.Evidence, func(a, b asn.Evidence) int {
				return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Detail, b.Detail))
			})
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), asn.ComparePrefix(a.Prefix, b.Prefix))
	})
	return out
}

func pathString(p []uint32) string {
	s := make([]string, len(p))
	for i, a := range p {
		s[i] = fmt.Sprint(a)
	}
	return strings.Join(s, " ")
}

// fits is the live guard: n additions fit when, with those applied in the
// window, they stay within max_additions.
func (w *Watch) fits(n int) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	used := w.windowUsed()
	if used+n <= w.cfg.MaxAdditions {
		return true, ""
	}
	return false, fmt.Sprintf("watch: %d new prefixes, %d applied by the watch in the last %s (watch.max_additions %d per watch.window)",
		n, used, w.cfg.Window, w.cfg.MaxAdditions)
}

// windowUsed counts additions within the window; mu is held.
func (w *Watch) windowUsed() int {
	cut := w.now().Add(-w.cfg.Window)
	keep := w.additions[:0]
	used := 0
	for _, a := range w.additions {
		if a.at.After(cut) {
			keep = append(keep, a)
			used += a.n
		}
	}
	w.additions = keep
	return used
}

// Stats returns the watch's counters.
func (w *Watch) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	for _, by := range w.seen {
		s.Routes += len(by)
	}
	s.Candidates = len(w.pending())
	s.WindowUsed = w.windowUsed()
	return s
}

// Run proposes batches until ctx ends: after new candidates it waits for
// the burst to end (Quiet, at most MaxDelay), then hands every pending
// candidate to the daemon as one batch.
func (w *Watch) Run(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		case <-t.C:
		}
		if !w.settle(ctx) {
			return nil
		}
		for !w.step(ctx) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(w.config().Retry):
			}
		}
	}
}

// settle waits until no new route came for Quiet, at most MaxDelay.
func (w *Watch) settle(ctx context.Context) bool {
	cfg := w.config()
	deadline := time.NewTimer(cfg.MaxDelay)
	defer deadline.Stop()
	for {
		quiet := time.NewTimer(cfg.Quiet)
		select {
		case <-ctx.Done():
			quiet.Stop()
			return false
		case <-deadline.C:
			quiet.Stop()
			return true
		case <-quiet.C:
			return true
		case <-w.kick:
			quiet.Stop()
		}
	}
}

// step proposes the pending candidates once; false: try again later.
func (w *Watch) step(ctx context.Context) bool {
	w.mu.Lock()
	cands := w.pending()
	heldRun, held := w.heldRun, w.held
	w.mu.Unlock()
	if heldRun != 0 {
		waiting, rejected := w.app.HeldState(heldRun)
		w.mu.Lock()
		if rejected {
			maps.Copy(w.rejected, held)
			cands = w.pending()
		}
		if !waiting {
			w.held, w.heldRun = nil, 0
		}
		w.mu.Unlock()
		if waiting && !slices.ContainsFunc(cands, func(c Candidate) bool { return !held[Key{c.Target, c.Prefix}] }) {
			return true // nothing new since the batch held
		}
	}
	if len(cands) == 0 {
		return true
	}
	res, err := w.app.ApplyWatch(ctx, cands, w.fits)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// Logged once while it lasts (e.g. a held change waiting for days).
		if err.Error() != w.stats.LastError {
			w.log.WithError(err).WithField("candidates", len(cands)).Warn("watch: batch not applied; retrying")
		}
		w.stats.LastError = err.Error()
		return ctx.Err() != nil
	}
	w.stats.LastError = ""
	for k, why := range res.Refused {
		w.refused[k] = why
		w.stats.Refused++
	}
	if res.RunID != 0 {
		w.stats.LastRun, w.stats.LastOutcome = res.RunID, res.Outcome
	}
	switch res.Outcome {
	case Applied:
		w.additions = append(w.additions, addition{w.now(), res.Added})
		w.stats.Applied += uint64(res.Added)
		first := cands[0].FirstSeen
		for _, c := range cands {
			if c.FirstSeen.Before(first) {
				first = c.FirstSeen
			}
		}
		w.stats.LastDelaySecs = w.now().Sub(first).Seconds()
	case Held:
		w.stats.Held++
		w.heldRun = res.RunID
		w.held = map[Key]bool{}
		for _, c := range cands {
			w.held[Key{c.Target, c.Prefix}] = true
		}
	}
	return true
}
