package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/internal/config"
)

// jitterSchedule delays each activation by a random share of max, so that
// many installations do not query the registries at the same second.
type jitterSchedule struct {
	inner cron.Schedule
	max   time.Duration
}

func (j jitterSchedule) Next(t time.Time) time.Time {
	n := j.inner.Next(t)
	if j.max <= 0 || n.IsZero() {
		return n
	}
	return n.Add(rand.N(j.max))
}

// cronLog maps cron's per-tick Info messages to Debug.
type cronLog struct{ e *logrus.Entry }

func kv(e *logrus.Entry, kvs []any) *logrus.Entry {
	f := logrus.Fields{}
	for i := 0; i+1 < len(kvs); i += 2 {
		f[fmt.Sprint(kvs[i])] = kvs[i+1]
	}
	return e.WithFields(f)
}

func (l cronLog) Info(msg string, kvs ...any) { kv(l.e, kvs).Debug("cron: " + msg) }
func (l cronLog) Error(err error, msg string, kvs ...any) {
	kv(l.e, kvs).WithError(err).Error("cron: " + msg)
}

func parseSchedule(cfg *config.Config) (cron.Schedule, error) {
	s, err := config.CronParser().Parse(cfg.ScheduleSpec())
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", cfg.ScheduleSpec(), err)
	}
	return jitterSchedule{inner: s, max: cfg.Jitter}, nil
}

// startSchedule starts the cron scheduler. Runs never overlap: the job
// itself skips when the run slot is taken (logged), and a panic in a run
// is recovered inside it.
func (d *Daemon) startSchedule(cfg *config.Config) error {
	sched, err := parseSchedule(cfg)
	if err != nil {
		return err
	}
	l := cronLog{d.log.WithField("component", "cron")}
	d.cron = cron.New(cron.WithParser(config.CronParser()), cron.WithLogger(l), cron.WithChain(cron.Recover(l)))
	d.mu.Lock()
	d.cronID = d.cron.Schedule(sched, cron.FuncJob(d.scheduled))
	d.mu.Unlock()
	d.cron.Start()
	d.log.WithFields(logrus.Fields{"schedule": cfg.ScheduleSpec(), "jitter": cfg.Jitter.String(),
		"next": d.cron.Entry(d.cronID).Next}).Info("scheduler started")
	return nil
}

// Reload reads the config file again (SIGHUP). A config with errors is
// rejected with its errors and the running one stays. Settings that only
// take effect at start are reported, not applied.
func (d *Daemon) Reload(ctx context.Context) error {
	old := d.config()
	cfg, err := config.Load(old.Path)
	if err == nil {
		cfg = d.opts.override(cfg)
	}
	if err != nil {
		d.m.Reload(err)
		var ce *config.Error
		lines := []string{err.Error()}
		if errors.As(err, &ce) {
			lines = ce.Lines
		}
		for _, l := range lines {
			d.log.WithField("config", old.Path).Error("reload rejected: " + l)
		}
		return err
	}
	var restart []string
	if cfg.StateDirectory() != old.StateDirectory() {
		restart = append(restart, "state_dir")
	}
	if cfg.APIAddress() != old.APIAddress() {
		restart = append(restart, "api.listen")
	}
	if a, b := cfg.API, old.API; a.ReadTimeout != b.ReadTimeout || a.WriteTimeout != b.WriteTimeout ||
		a.IdleTimeout != b.IdleTimeout || a.MaxConnections != b.MaxConnections {
		restart = append(restart, "api (timeouts, max_connections)")
	}
	if (cfg.BGP == nil) != (old.BGP == nil) {
		restart = append(restart, "bgp")
	} else if cfg.BGP != nil && (cfg.BGP.ASN != old.BGP.ASN || cfg.BGP.RouterID != old.BGP.RouterID ||
		cfg.BGP.Listen != old.BGP.Listen) {
		restart = append(restart, "bgp (asn, router_id, listen)")
	}
	if len(restart) > 0 {
		d.log.WithField("settings", restart).Warn("reload: these settings take effect at the next start only")
	}
	sched, err := parseSchedule(cfg)
	if err != nil {
		d.m.Reload(err)
		return err
	}
	tok, err := cfg.APIToken()
	if err != nil {
		d.m.Reload(err)
		d.log.WithError(err).Error("reload rejected")
		return err
	}
	commitBMP, undoBMP, err := d.reloadBMP(old, cfg)
	if err != nil {
		d.m.Reload(err)
		d.log.WithError(err).Error("reload rejected: the BMP receiver cannot take the new bmp: block")
		return err
	}
	if err := d.updateSpeaker(ctx, cfg); err != nil {
		undoBMP()
		d.m.Reload(err)
		d.log.WithError(err).Error("reload rejected: the speaker refused the new neighbors")
		return err
	}
	commitBMP()
	if d.srv != nil {
		d.srv.SetToken(tok)
	}
	d.cfgMu.Lock()
	d.cfg = cfg
	d.cfgMu.Unlock()
	d.watch.SetConfig(watchConfig(cfg))
	// The vendors, their options or output_dir may have changed, or the
	// operator fixed what made a write fail: the next run writes the files.
	d.outputsStale()
	if d.cron != nil {
		d.mu.Lock()
		d.cron.Remove(d.cronID)
		d.cronID = d.cron.Schedule(sched, cron.FuncJob(d.scheduled))
		d.mu.Unlock()
	}
	d.m.Reload(nil)
	d.log.WithFields(logrus.Fields{"config": cfg.Path, "schedule": cfg.ScheduleSpec()}).Info("config reloaded")
	return nil
}

// updateSpeaker gives the speaker the reloaded neighbors; one not started
// yet is rebuilt from the new config.
func (d *Daemon) updateSpeaker(ctx context.Context, cfg *config.Config) error {
	d.spMu.Lock()
	defer d.spMu.Unlock()
	if d.speaker == nil || cfg.BGP == nil {
		return nil
	}
	if !d.bgpStarted {
		sp, err := d.newSpeaker(cfg)
		if err != nil {
			return err
		}
		d.speaker = sp
		return nil
	}
	return reconfigureSpeaker(ctx, d.speaker, cfg)
}
