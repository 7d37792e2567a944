package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/metrics"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/internal/watch"
	"github.com/asfence/asfence/policy"
)

// TriggerWatch: a run the live watch made (routes seen by routers).
const TriggerWatch = "watch"

// watchConfig is the watch's guard from the config.
func watchConfig(c *config.Config) watch.Config {
	maxAdd, window, minSources := c.Watch.Values()
	return watch.Config{MaxAdditions: maxAdd, Window: window, MinSources: minSources}
}

// newWatch makes the live watch (it proposes nothing before it knows the
// applied set) and registers its metrics.
func (d *Daemon) newWatch() {
	d.watch = watch.New(watchConfig(d.config()), d.log, d)
	d.m.Watch(func() metrics.WatchStats {
		s := d.watch.Stats()
		return metrics.WatchStats{Routes: s.Routes, Candidates: s.Candidates, Applied: s.Applied, Held: s.Held,
			Refused: s.Refused, WindowUsed: s.WindowUsed, LastDelaySeconds: s.LastDelaySecs}
	})
	d.m.BMP(d.metricBMP)
}

// startWatch runs the live watch until the daemon stops.
func (d *Daemon) startWatch() {
	d.mu.Lock()
	if d.applied != nil {
		d.watch.SetApplied(d.applied.Intent)
	}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = d.watch.Run(d.runCtx)
	}()
}

// feedHandler passes feed neighbors' routes to the watch.
type feedHandler struct{ w *watch.Watch }

func (f feedHandler) Routes(us []bgp.FeedUpdate) {
	rs := make([]watch.Route, len(us))
	for i, u := range us {
		rs[i] = watch.Route{Source: watch.KindFeed + ":" + u.Neighbor.String(), Peer: u.Neighbor, PeerAS: u.PeerAS,
			Prefix: u.Prefix, Origin: u.Origin, Path: u.Path, Withdraw: u.Withdraw, At: u.At}
	}
	f.w.Observe(rs)
}

func (f feedHandler) Down(n netip.Addr) { f.w.Forget(watch.KindFeed + ":" + n.String()) }

// carryWatch keeps the watch's prefixes from the state in force in a new
// snapshot (see watch.Carry): a scheduled run keeps only those routing
// still shows.
func (d *Daemon) carryWatch(prev, cur *asn.Snapshot, trigger string) int {
	if d.watch == nil {
		return 0
	}
	scheduled := trigger == TriggerSchedule
	var live []watch.Candidate
	if scheduled {
		live = d.watch.Live()
	}
	return watch.Carry(prev, cur, live, scheduled)
}

// errDecisionWaiting: the watch waits while another held change waits for
// a decision (applying a batch would supersede it).
var errDecisionWaiting = errors.New("a held change waits for a decision")

// ApplyWatch is a run with trigger watch: the candidates pass the policy;
// the prefixes it accepts are added to the set in force (nothing else
// changes) and applied when fits says so, or held for approval.
func (d *Daemon) ApplyWatch(ctx context.Context, cands []watch.Candidate, fits func(int) (bool, string)) (watch.Result, error) {
	var res watch.Result
	if d.runCtx.Err() != nil {
		return res, errStopping
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case d.sem <- struct{}{}:
	case <-t.C:
		return res, api.ErrBusy
	case <-ctx.Done():
		return res, ctx.Err()
	}
	defer func() { <-d.sem }()
	waiting, err := d.st.Waiting()
	if err != nil {
		return res, err
	}
	for _, w := range waiting {
		if w.Trigger != TriggerWatch {
			return res, fmt.Errorf("%w (run %d): the watch applies nothing until it is approved or rejected", errDecisionWaiting, w.ID)
		}
	}
	d.mu.Lock()
	prev := d.applied
	d.mu.Unlock()
	if prev == nil {
		return res, errors.New("no set applied yet")
	}
	cfg := d.config()
	add := cfg.PolicyRules.Apply(watch.Only(prev.Snapshot, cands))
	res.Refused = map[watch.Key]string{}
	for _, dr := range add.Dropped {
		p, err := netip.ParsePrefix(dr.Prefix)
		if err != nil {
			continue // an ASN drop
		}
		res.Refused[watch.Key{Target: dr.Target, Prefix: p}] = dr.Reason
		d.log.WithFields(logrus.Fields{"target": dr.Target, "prefix": dr.Prefix, "reason": dr.Reason, "detail": dr.Detail}).
			Warn("watch: a route of a target ASN refused by the policy")
	}
	intent, added := watch.AddTo(prev.Intent, add)
	res.Added = len(added)
	if res.Added == 0 {
		res.Outcome = watch.Refused
		return res, nil
	}
	now := d.opts.Now()
	r, err := d.st.BeginRun(TriggerWatch, now)
	if err != nil {
		return res, err
	}
	res.RunID = r.ID
	d.mu.Lock()
	d.running = r.ID
	d.mu.Unlock()
	// Only what the policy accepted (or the parts of it outside an
	// exception) enters the state, and is carried.
	cands = slices.DeleteFunc(slices.Clone(cands), func(c watch.Candidate) bool {
		return !slices.ContainsFunc(added, func(k watch.Key) bool {
			return k.Target == c.Target && k.Prefix.Bits() >= c.Prefix.Bits() && c.Prefix.Contains(k.Prefix.Addr())
		})
	})
	snap := watch.Merge(prev.Snapshot, cands)
	change := policy.Compare(prev.Intent, intent)
	r.SnapshotTime = prev.Snapshot.GeneratedAt
	r.Sources = watchSources(cands)
	r.Targets = store.Count(intent)
	r.Diff = store.Summarize(change)
	detail := &store.Detail{Change: change}
	state := &store.State{RunID: r.ID, At: now.UTC(), Snapshot: snap, Intent: intent}
	if ok, why := fits(res.Added); !ok {
		r.Outcome, r.Guard = store.Held, []string{why}
		r.End = d.opts.Now().UTC()
		d.closing()
		if err := d.st.Hold(r, detail, state); err != nil {
			r.Outcome, r.Error = store.Failed, fmt.Sprintf("recording the held change: %v", err)
			d.done(r)
			return res, err
		}
		d.done(r)
		res.Outcome = watch.Held
		return res, nil
	}
	if err := d.apply(d.runCtx, cfg, r, detail, state); err != nil {
		r.Outcome, r.Error = store.Failed, err.Error()
		r.End = d.opts.Now().UTC()
		d.closing()
		if err := d.st.AbortApply(r); err != nil {
			d.log.WithError(err).Error("recording the failed apply")
		}
		d.done(r)
		return res, err
	}
	d.done(r)
	res.Outcome = watch.Applied
	return res, nil
}

// watchSources lists the routers and feeds behind a batch.
func watchSources(cands []watch.Candidate) []store.SourceStatus {
	var names []string
	for _, c := range cands {
		for _, e := range c.Evidence {
			if !slices.Contains(names, e.Source) {
				names = append(names, e.Source)
			}
		}
	}
	slices.Sort(names)
	out := make([]store.SourceStatus, len(names))
	for i, n := range names {
		out[i] = store.SourceStatus{Source: n, OK: true}
	}
	return out
}

// HeldState reports whether held run id still waits, or was rejected.
func (d *Daemon) HeldState(id uint64) (waiting, rejected bool) {
	if _, _, err := d.st.Held(id); err == nil {
		return true, false
	}
	r, _, err := d.st.Run(id)
	return false, err == nil && r.Decision != nil && r.Decision.Action == store.Rejected
}

// BMP is GET /api/v1/bmp: the routers reporting over BMP and the live
// watch.
func (d *Daemon) BMP(context.Context) (*api.BMP, error) {
	cfg := d.config()
	out := &api.BMP{Routers: d.bmpRouters()}
	if cfg.BMP != nil {
		out.Listen = cfg.BMP.Listen
	}
	s := d.watch.Stats()
	maxAdd, window, minSources := cfg.Watch.Values()
	out.Watch = api.WatchStatus{On: cfg.WatchOn(), Routes: s.Routes, Candidates: s.Candidates, Applied: s.Applied,
		Held: s.Held, Refused: s.Refused, WindowUsed: s.WindowUsed, MaxAdditions: maxAdd, Window: window.String(),
		MinSources: minSources, LastRun: s.LastRun, LastOutcome: s.LastOutcome, LastError: s.LastError}
	return out, nil
}
