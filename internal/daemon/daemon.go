// Package daemon is `asfence run`: on a schedule it resolves the targets,
// applies the policy, holds changes that the guard finds too large, and
// otherwise announces the new set over BGP and writes the vendor files,
// recording every run in the state store. A failure anywhere keeps what is
// announced: sources that fail keep their facts (last-known-good), a run
// whose sources all fail changes nothing, and a local error never
// withdraws a route.
package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/bmp"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/metrics"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/internal/watch"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/report"
)

const (
	// applyTimeout bounds one BGP apply; it is not cut short by a stop, so
	// that the speaker is never left half-way by a SIGTERM.
	applyTimeout = 2 * time.Minute
)

// maxRetryDelay bounds the retry delay, which doubles with each failed
// run in a row from retry_after.
const maxRetryDelay = 30 * time.Minute

// retryDelay is the wait before retrying after failures failed runs in a
// row.
func retryDelay(base time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// Options configure the daemon.
type Options struct {
	Config *config.Config
	// Offline resolves from the embedded snapshot (or Snapshot) only.
	Offline bool
	// Snapshot is a Snapshot JSON file read at every run instead of
	// querying registries.
	Snapshot string
	Version  string
	Log      *logrus.Logger
	// StateDir and OutputDir, when set, override the config's state_dir
	// and output_dir, also after a reload (command-line flags).
	StateDir, OutputDir string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Daemon is a running `asfence run`.
//
// Its state has one writer until it exists: Serve loads the applied set,
// makes the speaker and the scheduler, and only then serves the API and
// starts runs (the goroutines that read and change that state). From
// then on the fields are read and written under the locks named below;
// cron is never replaced.
type Daemon struct {
	opts Options
	log  *logrus.Entry
	st   *store.Store
	m    *metrics.Metrics
	srv  *api.Server

	cfgMu sync.RWMutex
	cfg   *config.Config

	// sem admits one run or decision at a time: a scheduled run that finds
	// it taken is skipped, a decision waits.
	sem chan struct{}

	mu          sync.Mutex
	running     uint64
	applied     *store.State
	lastSuccess time.Time
	// failures counts failed runs in a row (retries back off by it).
	failures int
	started  time.Time
	// outputsChecked: the vendor files were written (or found equal) for
	// the applied set and the current config; until then every run writes
	// them again. outputsErr is why the last write failed ("": it did
	// not); the daemon is not ready while it is set.
	outputsChecked bool
	outputsErr     string

	ready atomic.Bool
	// spMu guards speaker and bgpStarted: the speaker is started by the
	// first applied run when there was nothing to announce at start, and
	// replaced on reload until then (see speaker.go).
	spMu       sync.Mutex
	speaker    *bgp.Speaker
	bgpStarted bool

	cron   *cron.Cron
	cronID cron.EntryID

	// watch is the live watch (watch.go); it proposes nothing without
	// routes from a feed neighbor or BMP.
	watch *watch.Watch
	// bmp is the BMP receiver (nil without bmp.listen), bmpStop stops it;
	// bmpMu guards both (a reload starts, changes or stops the receiver).
	bmpMu   sync.Mutex
	bmp     *bmp.Receiver
	bmpStop func()

	// runCtx is cancelled at shutdown: a resolve in progress is aborted.
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
}

// override applies the command-line directories to a loaded config.
func (o Options) override(c *config.Config) *config.Config {
	if o.StateDir == "" && o.OutputDir == "" {
		return c
	}
	cp := *c
	if o.StateDir != "" {
		cp.StateDir = o.StateDir
	}
	if o.OutputDir != "" {
		cp.OutputDir = o.OutputDir
	}
	return &cp
}

// New opens the state store and prepares the daemon. A damaged store is a
// *store.CorruptError; it is never overwritten.
func New(o Options) (*Daemon, error) {
	if o.Log == nil {
		o.Log = logrus.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	o.Config = o.override(o.Config)
	d := &Daemon{
		opts: o,
		log:  logrus.NewEntry(o.Log),
		cfg:  o.Config,
		sem:  make(chan struct{}, 1),
	}
	st, err := store.Open(o.Config.StateDirectory(), store.Options{})
	if err != nil {
		return nil, err
	}
	d.st = st
	d.m = metrics.New(o.Version, d.Peers)
	d.newWatch()
	if listen := o.Config.APIAddress(); listen != "" {
		tok, err := o.Config.APIToken()
		if err != nil {
			st.Close()
			return nil, err
		}
		con, err := newConsole(d)
		if err != nil {
			st.Close()
			return nil, err
		}
		srv, err := api.New(d, api.Options{Listen: listen, Token: tok, Metrics: d.m.Handler(), Console: con,
			Limits: apiLimits(o.Config, openFileLimit(), d.log)})
		if err != nil {
			st.Close()
			return nil, err
		}
		d.srv = srv
	}
	return d, nil
}

// fdReserve is the file descriptors kept out of the API's reach for the
// rest of the daemon: the state store, the BGP listener, registry
// connections, output files, the config on reload; plus two per BGP
// neighbor.
const fdReserve = 128

// openFileLimit is the process's open-file limit (RLIMIT_NOFILE, whose
// soft value the Go runtime raises to the hard one at start); 0 if unknown.
func openFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

// apiLimits are the config's api: limits, with the connection cap lowered
// so that the API never takes the descriptors the BGP sessions and the
// store need (nofile: the open-file limit, 0 if unknown).
func apiLimits(c *config.Config, nofile uint64, log *logrus.Entry) api.Limits {
	l := api.Limits{ReadTimeout: c.API.ReadTimeout, WriteTimeout: c.API.WriteTimeout, IdleTimeout: c.API.IdleTimeout,
		MaxConnections: c.API.MaxConnections}
	if l.MaxConnections == 0 {
		l.MaxConnections = api.DefaultMaxConnections
	}
	reserve := fdReserve
	if c.BGP != nil {
		reserve += 2 * len(c.BGP.Neighbors)
	}
	if nofile > 0 && nofile < uint64(l.MaxConnections+reserve) {
		avail := max(int(nofile)-reserve, 8)
		log.WithFields(logrus.Fields{"open_file_limit": nofile, "reserved": reserve, "max_connections": avail}).
			Warnf("api.max_connections %d lowered to %d: the open-file limit leaves no more beside the descriptors kept for BGP, the state store and registries", l.MaxConnections, avail)
		l.MaxConnections = avail
	}
	return l
}

func (d *Daemon) config() *config.Config {
	d.cfgMu.RLock()
	defer d.cfgMu.RUnlock()
	return d.cfg
}

// APIAddr is the address the API listens on ("" when off), once Serve has
// bound it.
func (d *Daemon) APIAddr() string {
	if d.srv == nil {
		return ""
	}
	return d.srv.Addr()
}

// Serve announces the applied state, then runs on the schedule until ctx
// ends (SIGTERM). A value on reload (SIGHUP) reloads the config and runs.
// started, if not nil, is called once the API listens and the state is
// announced.
func (d *Daemon) Serve(ctx context.Context, reload <-chan struct{}, started func()) (err error) {
	d.started = d.opts.Now()
	d.runCtx, d.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	defer d.cancelRun()
	defer func() {
		if cerr := d.st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := d.recoverState(); err != nil {
		return err
	}
	// The API address is bound first, so that a port in use stops the
	// start at once; it serves only once the state it shows exists (the
	// set announced, the scheduler made): from then on the handlers read
	// that state under d.mu and d.spMu, and nothing before it is served
	// half-made. Clients that connect meanwhile wait in the listen queue.
	if d.srv != nil {
		if err := d.srv.Listen(); err != nil {
			return err
		}
	}
	defer d.stopSpeaker(ctx)
	if err := d.announce(ctx); err != nil {
		_ = d.srv.Close()
		return err
	}
	if err := d.startBMP(d.config()); err != nil {
		_ = d.srv.Close()
		return err
	}
	if err := d.startSchedule(d.config()); err != nil {
		_ = d.srv.Close()
		return err
	}
	d.startWatch()
	apiDone := make(chan error, 1)
	if d.srv != nil {
		go func() { apiDone <- d.srv.Serve() }()
		d.log.WithField("listen", d.srv.Addr()).Info("API listening")
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = d.srv.Shutdown(sctx)
		}()
	}
	if started != nil {
		started()
	}
	d.goRun("startup")
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: aborting the run in progress, if any")
			d.cancelRun()
			<-d.cron.Stop().Done()
			d.wg.Wait()
			return nil
		case <-reload:
			if err := d.Reload(ctx); err == nil {
				d.goRun("reload")
			}
		case err := <-apiDone:
			if err != nil {
				d.log.WithError(err).Error("API server stopped")
			}
			apiDone = nil
		}
	}
}

// recoverState closes runs a previous process left open and loads the
// applied state.
func (d *Daemon) recoverState() error {
	interrupted, err := d.st.Interrupted(d.opts.Now())
	if err != nil {
		return err
	}
	for _, r := range interrupted {
		d.log.WithFields(logrus.Fields{"run": r.ID, "trigger": r.Trigger, "start": r.Start}).
			Warn("run was interrupted by a stop of the daemon; recorded as failed")
	}
	applied, err := d.st.Applied()
	if err != nil {
		return err
	}
	d.applied = applied
	if waiting, err := d.st.Waiting(); err == nil {
		d.m.Held(len(waiting))
	}
	return nil
}

// announce starts the speaker with the applied state before any resolve,
// so a restart is invisible to routers. A state whose apply was cut off by
// a stop is completed first: the peers were moving to it.
func (d *Daemon) announce(ctx context.Context) error {
	cfg := d.config()
	pending, err := d.st.Pending()
	if err != nil {
		return err
	}
	var in *policy.Intent
	if d.applied != nil {
		in = d.applied.Intent
	}
	if pending != nil {
		d.log.WithField("run", pending.RunID).Warn("the daemon stopped while applying this run: announcing its set")
		in = pending.Intent
	}
	if cfg.BGP != nil {
		sp, err := d.newSpeaker(cfg)
		if err != nil {
			return err
		}
		d.speaker = sp
		// Without any set to announce (first start, or a state directory
		// that was reset) the sessions wait for the first applied run:
		// opening them empty would make peers drop the routes they still
		// hold from before.
		if in != nil {
			// The stored set is what peers still hold from the previous
			// process: resume it.
			if err := sp.Resume(ctx, in); err != nil {
				if pending == nil {
					return fmt.Errorf("bgp: %w", err)
				}
				d.log.WithError(err).Warn("the interrupted run's set cannot be announced: announcing the applied set")
				pending = nil
				if d.speaker, err = d.newSpeaker(cfg); err != nil {
					return err
				}
				if d.applied != nil {
					if err := d.speaker.Resume(ctx, d.applied.Intent); err != nil {
						return fmt.Errorf("bgp: %w", err)
					}
					d.bgpStarted = true
				}
			} else {
				d.bgpStarted = true
			}
		} else {
			d.log.Info("bgp: no set to announce yet: the sessions start with the first applied run")
		}
	}
	if pending != nil {
		if err := d.completePending(pending); err != nil {
			return err
		}
	} else if p, _ := d.st.Pending(); p != nil {
		r, err := d.st.RunRecord(p.RunID)
		if err != nil {
			return err
		}
		if err := d.st.AbortApply(r); err != nil {
			return err
		}
	}
	d.mu.Lock()
	if d.applied != nil {
		d.m.Applied(store.Count(d.applied.Intent))
	}
	d.mu.Unlock()
	if d.applied != nil {
		d.setReady()
	}
	if d.applied != nil {
		d.log.WithFields(logrus.Fields{"run": d.applied.RunID, "prefixes": prefixCount(d.applied.Intent)}).Info("announced the applied set")
		// Outputs may lag the store after a crash between commit and
		// write, or after a write that failed: they are checked at every
		// start.
		_, _, _ = d.writeOutputs(cfg, d.applied.RunID, d.applied.Intent)
	} else {
		d.log.Info("no applied set yet: the first run will make one")
	}
	return nil
}

func (d *Daemon) completePending(p *store.State) error {
	r, err := d.st.RunRecord(p.RunID)
	if err != nil {
		return err
	}
	if r.Outcome == store.Failed {
		r.Outcome = store.Applied
		r.Error = ""
	}
	if err := d.st.CommitApply(r, nil); err != nil {
		return err
	}
	d.applied = p
	d.addGuardBase(d.config(), r, p)
	return nil
}

func (d *Daemon) stopSpeaker(ctx context.Context) {
	d.spMu.Lock()
	defer d.spMu.Unlock()
	if d.speaker == nil || !d.bgpStarted {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Graceful: peers keep the routes until we are back.
	if err := d.speaker.Stop(sctx, true); err != nil {
		d.log.WithError(err).Warn("stopping the BGP speaker")
	}
}

func prefixCount(in *policy.Intent) int {
	n := 0
	for _, t := range in.Targets {
		n += len(t.Prefixes)
	}
	return n
}

// Ready reports whether the applied set has been announced and the vendor
// files match it.
func (d *Daemon) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready.Load() && d.outputsErr == ""
}

func (d *Daemon) setReady() {
	d.ready.Store(true)
	d.m.Ready(d.Ready())
}

// Applied is the Intent in force.
func (d *Daemon) Applied() *policy.Intent {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied == nil {
		return nil
	}
	return d.applied.Intent
}

// Runs lists runs from the store.
func (d *Daemon) Runs(o store.ListOptions) ([]*store.Run, error) { return d.st.Runs(o) }

// RunChange reads one run and its change summary.
func (d *Daemon) RunChange(id uint64) (*store.Run, *store.ChangeSummary, error) {
	return d.st.RunChange(id)
}

// RunPrefixes pages through one target's changed prefixes.
func (d *Daemon) RunPrefixes(id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) (int, error) {
	return d.st.RunPrefixes(id, q, fn)
}

// RunDiff reads lines of a vendor file's recorded diff.
func (d *Daemon) RunDiff(id uint64, file string, offset, limit int, fn func(string) error) (int, error) {
	return d.st.RunDiff(id, file, offset, limit, fn)
}

// RunReport is the report a run kept.
func (d *Daemon) RunReport(id uint64) (*store.Run, *report.Report, error) {
	return d.st.RunReport(id)
}

// Status describes the daemon.
func (d *Daemon) Status(ctx context.Context) (*api.Status, error) {
	cfg := d.config()
	st := &api.Status{Version: d.opts.Version, Ready: d.Ready(), StartedAt: d.started.UTC(), Schedule: cfg.ScheduleSpec(),
		FailedSources: []store.SourceStatus{}}
	if d.cron != nil {
		d.mu.Lock()
		id := d.cronID
		d.mu.Unlock()
		st.NextRun = d.cron.Entry(id).Next
	}
	d.mu.Lock()
	st.Running = d.running
	if d.applied != nil {
		st.Applied = &api.AppliedInfo{RunID: d.applied.RunID, At: d.applied.At, SnapshotTime: d.applied.Snapshot.GeneratedAt,
			Targets: store.Count(d.applied.Intent)}
	}
	st.LastSuccess = d.lastSuccess
	st.OutputsError = d.outputsErr
	d.mu.Unlock()
	// The newest finished run, as the store (and history) has it.
	recent, err := d.st.Runs(store.ListOptions{Limit: 2})
	if err != nil {
		return nil, err
	}
	for _, r := range recent {
		if r.Outcome != store.Running {
			st.LastRun = r
			break
		}
	}
	if st.LastRun != nil {
		for _, s := range st.LastRun.Sources {
			if !s.OK {
				st.Degraded = true
				st.FailedSources = append(st.FailedSources, s)
			}
		}
	}
	held, err := d.st.Waiting()
	if err != nil {
		return nil, err
	}
	st.Held = held
	if st.Held == nil {
		st.Held = []*store.Run{}
	}
	if cfg.BGP != nil {
		ps, err := d.Peers(ctx)
		st.Peers = &api.PeerSummary{Total: len(ps)}
		if err != nil {
			st.Peers.Error = err.Error()
		}
		for _, p := range ps {
			if p.Established {
				st.Peers.Established++
			}
		}
	}
	return st, nil
}

// Peers lists the BGP neighbors (none without a bgp: block).
func (d *Daemon) Peers(ctx context.Context) ([]bgp.PeerStatus, error) {
	d.spMu.Lock()
	sp, started := d.speaker, d.bgpStarted
	d.spMu.Unlock()
	if sp == nil {
		return nil, nil
	}
	if started {
		return sp.Peers(ctx)
	}
	var out []bgp.PeerStatus
	if cfg := d.config(); cfg.BGP != nil {
		for _, n := range cfg.BGP.Neighbors {
			out = append(out, bgp.PeerStatus{Address: n.Address, Description: n.Description, ASN: n.ASN,
				State: "not started (waiting for the first applied run)", Sent: map[string]int{}, Feed: n.Feed})
		}
	}
	return out, nil
}

// errStopping: the daemon is shutting down (503 through the API).
var errStopping = fmt.Errorf("%w: the daemon is stopping", api.ErrNotReady)
