package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/sources"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/report"
)

// Triggers recorded in runs.
const (
	TriggerStartup  = "startup"
	TriggerRetry    = "retry"
	TriggerSchedule = "schedule"
	TriggerReload   = "reload"
	TriggerAPI      = "api"
)

// slotWait bounds how long a trigger waits for a slot that no run holds:
// a run finishing (its record stored, status, metrics and pruning still
// to do) or a held change being applied. It is generous: under load,
// pruning alone took seconds, and a trigger refused then is a false busy.
const slotWait = time.Minute

// begin takes the run slot and records a new run; it returns api.ErrBusy
// when a run is in progress. When no run is (a decision is being applied,
// or a run is just releasing the slot) it waits up to wait.
func (d *Daemon) begin(trigger string, wait time.Duration) (*store.Run, error) {
	if d.runCtx != nil && d.runCtx.Err() != nil {
		return nil, errStopping
	}
	select {
	case d.sem <- struct{}{}:
	default:
		d.mu.Lock()
		id := d.running
		d.mu.Unlock()
		if id != 0 {
			return nil, fmt.Errorf("%w (run %d)", api.ErrBusy, id)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case d.sem <- struct{}{}:
		case <-t.C:
			return nil, fmt.Errorf("%w (a run is finishing or a held change is being decided)", api.ErrBusy)
		}
	}
	r, err := d.st.BeginRun(trigger, d.opts.Now())
	if err != nil {
		<-d.sem
		return nil, err
	}
	d.mu.Lock()
	d.running = r.ID
	d.mu.Unlock()
	return r, nil
}

// goRun starts a run in the background (startup, reload); a run already in
// progress makes it a logged skip.
func (d *Daemon) goRun(trigger string) {
	r, err := d.begin(trigger, slotWait)
	if err != nil {
		d.log.WithField("trigger", trigger).WithError(err).Info("run skipped")
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.execute(r)
	}()
}

// scheduled is the cron job: it runs in the cron goroutine, so cron's
// Stop waits for it.
func (d *Daemon) scheduled() {
	r, err := d.begin(TriggerSchedule, 0)
	if err != nil {
		d.log.WithField("trigger", TriggerSchedule).WithError(err).Info("run skipped")
		return
	}
	d.execute(r)
}

// Trigger starts a run for the API.
func (d *Daemon) Trigger(_ context.Context, by string) (*store.Run, error) {
	r, err := d.begin(TriggerAPI, slotWait)
	if err != nil {
		return nil, err
	}
	d.log.WithFields(logrus.Fields{"run": r.ID, "by": by}).Info("run triggered through the API")
	started := *r // the run goes on changing r
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.execute(r)
	}()
	return &started, nil
}

// execute runs one pass and releases the run slot. A panic is recorded as
// a failed run: nothing was applied.
func (d *Daemon) execute(r *store.Run) {
	defer func() { <-d.sem }()
	defer func() {
		if p := recover(); p != nil {
			d.log.WithField("stack", string(debug.Stack())).Errorf("run %d: internal error: %v", r.ID, p)
			r.Outcome, r.Error = store.Failed, fmt.Sprintf("internal error: %v", p)
			d.finish(r, nil)
		}
	}()
	d.pass(d.runCtx, d.config(), r)
}

// finish records a run that applies nothing (failed, unchanged, held) and
// updates the in-memory status and metrics.
func (d *Daemon) finish(r *store.Run, detail *store.Detail) {
	if r.End.IsZero() {
		r.End = d.opts.Now().UTC()
	}
	d.closing()
	if err := d.st.PutRun(r, detail); err != nil {
		d.log.WithError(err).WithField("run", r.ID).Error("recording the run")
	}
	d.done(r)
}

// closing marks the run slot as being released, before the run's record
// shows it finished: whoever sees the run finished and asks for the next
// one waits the moment until the slot is free instead of being refused as
// busy. The slot itself (d.sem) is released when execute returns.
func (d *Daemon) closing() {
	d.mu.Lock()
	d.running = 0
	d.mu.Unlock()
}

// done updates status and metrics and logs the summary line.
func (d *Daemon) done(r *store.Run) {
	d.mu.Lock()
	d.running = 0
	if r.Outcome != store.Failed {
		d.lastSuccess = r.End
		d.failures = 0
	} else {
		d.failures++
	}
	failures := d.failures
	if d.applied != nil {
		d.m.Applied(store.Count(d.applied.Intent))
	}
	d.mu.Unlock()
	d.m.Run(r)
	if w, err := d.st.Waiting(); err == nil {
		d.m.Held(len(w))
	}
	cfg := d.config()
	if n, err := d.st.Prune(store.Retention{Runs: cfg.Retention.Runs, MaxAge: cfg.Retention.MaxAge}, d.opts.Now()); err != nil {
		d.log.WithError(err).Warn("pruning the run history")
	} else if n > 0 {
		d.log.WithField("deleted", n).Debug("pruned old runs")
	}
	d.logSummary(r)
	if failures > 0 {
		d.scheduleRetry(failures)
	}
}

// scheduleRetry runs again after a failed run (the registries may be back,
// a lab's registry may have started after asfence), sooner than the
// schedule would. A later run that ends the series of failures, or
// another failure scheduling its own retry, makes this one moot.
func (d *Daemon) scheduleRetry(failures int) {
	base := d.config().RetryDelay()
	if base <= 0 {
		return
	}
	delay := retryDelay(base, failures)
	d.log.WithFields(logrus.Fields{"in": delay.String(), "failures": failures}).Info("retrying the failed run")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-d.runCtx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		current := d.failures == failures
		d.mu.Unlock()
		if current {
			d.goRun(TriggerRetry)
		}
	}()
}

// logSummary is the one line every run logs.
func (d *Daemon) logSummary(r *store.Run) {
	failed := map[string]bool{}
	for _, s := range r.Sources {
		if !s.OK {
			failed[s.Source] = true
		}
	}
	v4, v6 := 0, 0
	for _, t := range r.Targets {
		v4 += t.IPv4
		v6 += t.IPv6
	}
	f := logrus.Fields{
		"run":            r.ID,
		"trigger":        r.Trigger,
		"outcome":        r.Outcome,
		"duration":       r.End.Sub(r.Start).Round(time.Millisecond).String(),
		"ipv4":           v4,
		"ipv6":           v6,
		"added":          r.Diff.Added,
		"removed":        r.Diff.Removed,
		"sources":        len(r.Sources),
		"sources_failed": len(failed),
	}
	if r.Carried.Prefixes+r.Carried.ASNs > 0 {
		f["carried_over"] = r.Carried.Prefixes
	}
	if r.OutputsError != "" {
		f["outputs_error"] = r.OutputsError
	}
	e := d.log.WithFields(f)
	switch r.Outcome {
	case store.Failed:
		e.WithField("error", r.Error).Error("run failed: nothing changed")
	case store.Held:
		e.WithField("guard", strings.Join(r.Guard, "; ")).Warn("run held for approval: the applied set stays")
	default:
		if len(failed) > 0 {
			e.Warn("run " + r.Outcome + " (degraded: failed sources' facts carried over)")
		} else {
			e.Info("run " + r.Outcome)
		}
	}
}

// pass is one resolve -> policy -> guard -> apply.
func (d *Daemon) pass(ctx context.Context, cfg *config.Config, r *store.Run) {
	snap, names, err := d.resolve(ctx, cfg)
	if snap != nil {
		r.SnapshotTime = snap.GeneratedAt
		r.Sources = sourceStatus(names, snap.Incomplete)
		r.Degraded = len(snap.Incomplete) > 0
	}
	if err != nil {
		r.Outcome, r.Error = store.Failed, err.Error()
		if ctx.Err() != nil {
			r.Error = "aborted: the daemon is stopping"
		} else if snap == nil {
			// The sources could not even be built (a missing file, a bad
			// URL): a failed source all the same for status and metrics.
			r.Sources = []store.SourceStatus{{Source: "sources", Error: err.Error()}}
			r.Degraded = true
		}
		if ctx.Err() == nil {
			d.refreshOutputs(cfg, r, nil)
		}
		d.finish(r, nil)
		return
	}
	d.mu.Lock()
	prev := d.applied
	d.mu.Unlock()
	var prevSnap *asn.Snapshot
	var prevIntent *policy.Intent
	if prev != nil {
		prevSnap, prevIntent = prev.Snapshot, prev.Intent
	}
	merged, carried := asn.CarryOver(prevSnap, snap)
	carried.Prefixes += d.carryWatch(prevSnap, merged, r.Trigger)
	r.Carried = carried
	if carried.ASNs+carried.Prefixes > 0 {
		// Current target definitions (exclusions) win over old facts.
		merged = asn.Select(merged, cfg.TargetList)
	}
	intent := cfg.PolicyRules.Apply(merged)
	change := policy.Compare(prevIntent, intent)
	r.Targets = store.Count(intent)
	r.Diff = store.Summarize(change)
	detail := &store.Detail{Change: change, Report: report.Build(merged, intent)}
	state := &store.State{RunID: r.ID, At: d.opts.Now().UTC(), Snapshot: merged, Intent: intent}

	if change.Empty() && prev != nil {
		// Same set: refresh the stored evidence (for carry-over); the set in
		// force is still the one prev's run applied, and the speaker has
		// nothing to do.
		state.RunID, state.At = prev.RunID, prev.At
		r.Outcome = store.Unchanged
		d.refreshOutputs(cfg, r, detail)
		r.End = d.opts.Now().UTC()
		d.closing()
		if err := d.st.BeginApply(r, detail, state); err == nil {
			err = d.st.CommitApply(r, nil)
			if err == nil {
				d.setApplied(state)
			}
		} else {
			d.log.WithError(err).Warn("refreshing the applied state")
		}
		d.done(r)
		return
	}
	why := checkGuard(cfg.Guard, change)
	if w := cfg.Guard.WindowValue(); w > 0 {
		base, err := d.st.GuardBase(d.opts.Now().Add(-w))
		if err != nil {
			// Without its base the window cannot vouch for the change.
			why = append(why, fmt.Sprintf("guard.window: the applied sets of the window cannot be read: %v", err))
		} else if base != nil && (prev == nil || base.RunID != prev.RunID) {
			// (Against the set in force, the per-run check above says it.)
			why = append(why, checkWindow(cfg.Guard, base, intent)...)
		}
	}
	if len(why) > 0 {
		r.Outcome, r.Guard = store.Held, why
		d.refreshOutputs(cfg, r, nil)
		r.End = d.opts.Now().UTC()
		d.closing()
		if err := d.st.Hold(r, detail, state); err != nil {
			r.Outcome, r.Error = store.Failed, fmt.Sprintf("recording the held change: %v", err)
		}
		d.done(r)
		return
	}
	if err := d.apply(ctx, cfg, r, detail, state); err != nil {
		r.Outcome, r.Error = store.Failed, err.Error()
		d.refreshOutputs(cfg, r, nil)
		r.End = d.opts.Now().UTC()
		d.closing()
		if err := d.st.AbortApply(r); err != nil {
			d.log.WithError(err).Error("recording the failed apply")
		}
		d.done(r)
		return
	}
	d.done(r)
}

// apply announces state and makes it the applied one: the store records it
// as pending first, so that a crash half-way is completed at the next
// start. r is stored with outcome applied (or its decision) on success.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config, r *store.Run, detail *store.Detail, state *store.State) error {
	// An approval keeps the held run's outcome and end: its decision says
	// that it was applied. A run stays "running" until the commit.
	approval := r.Outcome == store.Held
	if err := d.st.BeginApply(r, detail, state); err != nil {
		return err
	}
	counts, err := d.announceSet(ctx, cfg, state.Intent)
	if err != nil {
		return err
	}
	r.BGP = counts
	// The files follow the peers; a crash before the commit below is
	// completed at the next start (pending state), which rewrites them.
	outs, diffs, err := d.writeOutputs(cfg, r.ID, state.Intent)
	r.Outputs = outs
	r.OutputsError = ""
	if err != nil {
		r.OutputsError = err.Error()
	}
	if detail == nil {
		// An approval: the change recorded when the run was held stays.
		detail = &store.Detail{}
	}
	detail.OutputDiffs = diffs
	if !approval {
		r.Outcome, r.End = store.Applied, d.opts.Now().UTC()
	}
	// The peers hold the new set now: show it before the run's record
	// becomes visible, so that whoever sees the run applied also sees its
	// set. (If the commit fails, the pending record is completed at the
	// next start, as after a crash.)
	d.setApplied(state)
	d.closing()
	if err := d.st.CommitApply(r, detail); err != nil {
		return err
	}
	d.addGuardBase(cfg, r, state)
	d.setReady()
	return nil
}

// addGuardBase records a set that came into force for guard.window. A
// failure only makes the window stricter (an older set stays its base).
func (d *Daemon) addGuardBase(cfg *config.Config, r *store.Run, state *store.State) {
	approved := r.Decision != nil && r.Decision.Action == store.Approved
	now := d.opts.Now()
	if err := d.st.AddGuardBase(r.ID, now, state.Intent, approved, now.Add(-cfg.Guard.WindowValue())); err != nil {
		d.log.WithError(err).WithField("run", r.ID).Warn("recording the applied set for guard.window")
	}
}

// announceSet makes the speaker announce in (delta only), or starts it
// with in when nothing was announced yet. On failure the speaker is put
// back to the applied set (it may have applied part of in).
func (d *Daemon) announceSet(ctx context.Context, cfg *config.Config, in *policy.Intent) (*bgp.Counts, error) {
	d.spMu.Lock()
	defer d.spMu.Unlock()
	if d.speaker == nil {
		return nil, nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
	defer cancel()
	if !d.bgpStarted {
		if err := d.speaker.Start(actx, in); err != nil {
			d.m.ApplyFailure()
			if sp, nerr := d.newSpeaker(cfg); nerr == nil {
				d.speaker = sp // a failed Start leaves the speaker unusable
			}
			return nil, fmt.Errorf("bgp start: %w", err)
		}
		d.bgpStarted = true
		return &bgp.Counts{Added: prefixCount(in)}, nil
	}
	counts, err := d.speaker.Apply(actx, in)
	if err == nil {
		d.m.BGPApplied(counts)
		return &counts, nil
	}
	d.m.ApplyFailure()
	d.mu.Lock()
	prev := d.applied
	d.mu.Unlock()
	old := &policy.Intent{}
	if prev != nil {
		old = prev.Intent
	}
	if _, rerr := d.speaker.Apply(actx, old); rerr != nil {
		d.log.WithError(rerr).Error("restoring the applied set on the speaker")
	}
	return nil, fmt.Errorf("bgp apply (the announced set was kept): %w", err)
}

func (d *Daemon) setApplied(st *store.State) {
	d.mu.Lock()
	d.applied = st
	d.mu.Unlock()
	d.watch.SetApplied(st.Intent)
	d.m.Applied(store.Count(st.Intent))
}

// resolve produces the run's snapshot and the names of the sources asked.
// An error means nothing usable came back (every source failed, or the
// sources could not be built).
func (d *Daemon) resolve(ctx context.Context, cfg *config.Config) (*asn.Snapshot, []string, error) {
	in := sources.Input{SnapshotFile: d.opts.Snapshot, Offline: d.opts.Offline}
	snap, names, err := sources.Load(ctx, in, cfg.Sources, cfg.TargetList, asn.Engine{Generator: "asfence " + d.opts.Version})
	switch {
	case err != nil && in.Stored():
		return &asn.Snapshot{Incomplete: []asn.Incomplete{{Source: in.Name(), Error: err.Error()}}}, names, err
	case err != nil && snap == nil:
		return nil, names, fmt.Errorf("sources: %w", err)
	}
	return snap, names, err
}

// sourceStatus lists every source asked, failed ones once per failure.
func sourceStatus(names []string, inc []asn.Incomplete) []store.SourceStatus {
	out := []store.SourceStatus{}
	failed := map[string]bool{}
	for _, in := range inc {
		failed[in.Source] = true
	}
	for _, n := range names {
		if !failed[n] {
			out = append(out, store.SourceStatus{Source: n, OK: true})
		}
	}
	for _, in := range inc {
		out = append(out, store.SourceStatus{Source: in.Source, Target: in.Target, Error: in.Error})
	}
	return out
}

// Approve applies exactly the held Intent of run id.
func (d *Daemon) Approve(ctx context.Context, id uint64, by string) (*store.Run, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-d.sem }()
	r, st, err := d.st.Held(id)
	if err != nil {
		return nil, err
	}
	r.Decision = &store.Decision{Action: store.Approved, At: d.opts.Now().UTC(), By: by}
	if err := d.apply(ctx, d.config(), r, nil, st); err != nil {
		r.Decision = nil
		if aerr := d.st.AbortApply(r); aerr != nil {
			d.log.WithError(aerr).Error("recording the failed approval")
		}
		return nil, fmt.Errorf("approve run %d: %w", id, err)
	}
	d.log.WithFields(logrus.Fields{"run": id, "by": by, "added": r.Diff.Added, "removed": r.Diff.Removed}).Warn("held change approved and applied")
	if w, err := d.st.Waiting(); err == nil {
		d.m.Held(len(w))
	}
	return r, nil
}

// Reject drops the held change of run id; the applied set stays.
func (d *Daemon) Reject(ctx context.Context, id uint64, by string) (*store.Run, error) {
	if err := d.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-d.sem }()
	r, err := d.st.Reject(id, by, d.opts.Now())
	if err != nil {
		return nil, err
	}
	d.log.WithFields(logrus.Fields{"run": id, "by": by}).Warn("held change rejected")
	if w, err := d.st.Waiting(); err == nil {
		d.m.Held(len(w))
	}
	return r, nil
}

// acquire waits for the run slot (a decision waits for a run to end).
func (d *Daemon) acquire(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", api.ErrBusy, ctx.Err())
	case <-d.runCtx.Done():
		return errStopping
	}
}
