package daemon

import (
	"context"
	"slices"

	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/bmp"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/metrics"
	"github.com/asfence/asfence/internal/watch"
)

// bmpOn reports whether cfg has the BMP receiver on.
func bmpOn(cfg *config.Config) bool { return cfg.BMP != nil && cfg.BMP.Listen != "" }

// bmpConfig is the receiver's configuration from cfg's bmp: block.
func (d *Daemon) bmpConfig(cfg *config.Config) bmp.Config {
	return bmp.Config{Listen: cfg.BMP.Listen, Routers: cfg.BMP.RouterAddrs(),
		MaxRoutesPerRouter: cfg.BMP.MaxRoutesPerRouter, Logger: d.log}
}

// receiver is the BMP receiver (nil when off).
func (d *Daemon) receiver() *bmp.Receiver {
	d.bmpMu.Lock()
	defer d.bmpMu.Unlock()
	return d.bmp
}

// startBMP starts the BMP receiver on bmp.listen (nothing without it): the
// routes routers report go to the live watch. A listener that cannot be
// bound is an error (at start it stops the start).
func (d *Daemon) startBMP(cfg *config.Config) error {
	if !bmpOn(cfg) {
		return nil
	}
	r, err := bmp.New(d.bmpConfig(cfg), d.onBMP)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	done := make(chan struct{})
	d.bmpMu.Lock()
	d.bmp, d.bmpStop = r, func() { cancel(); <-done }
	d.bmpMu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		if err := r.Serve(ctx); err != nil {
			d.log.WithError(err).Error("bmp: the receiver stopped: routers' routes are no longer watched")
		}
	}()
	return nil
}

// stopBMP stops the receiver (its routers' routes are withdrawn from the
// watch) and waits for it.
func (d *Daemon) stopBMP() {
	d.bmpMu.Lock()
	stop := d.bmpStop
	d.bmp, d.bmpStop = nil, nil
	d.bmpMu.Unlock()
	if stop != nil {
		stop()
		d.log.Info("bmp: the receiver stopped (bmp.listen is no longer set): its routers' routes are withdrawn from the watch")
	}
}

// reloadBMP applies a reload's bmp: block (old is the config in force): a
// receiver is started, or the running one takes the new listen address,
// allow-list and route limit (see bmp.Receiver.Reconfigure). An error
// (the new address cannot be bound) leaves the receiver as it was. undo
// reverts the change if the rest of the reload fails; commit finishes it
// once the reload succeeds (a receiver no longer configured stops only
// then).
func (d *Daemon) reloadBMP(old, cfg *config.Config) (commit, undo func(), err error) {
	nothing := func() {}
	if !bmpChanged(old.BMP, cfg.BMP) {
		return nothing, nothing, nil
	}
	r := d.receiver()
	switch {
	case !bmpOn(cfg):
		return d.stopBMP, nothing, nil
	case r == nil:
		if err := d.startBMP(cfg); err != nil {
			return nil, nil, err
		}
		return nothing, d.stopBMP, nil
	}
	if err := r.Reconfigure(d.bmpConfig(cfg)); err != nil {
		return nil, nil, err
	}
	return nothing, func() {
		if err := r.Reconfigure(d.bmpConfig(old)); err != nil {
			d.log.WithError(err).Error("bmp: could not restore the receiver's configuration after a rejected reload")
		}
	}, nil
}

// onBMP passes routers' route events to the watch (on the router's
// connection goroutine).
func (d *Daemon) onBMP(us []bmp.Update) {
	rs := make([]watch.Route, len(us))
	for i, u := range us {
		rs[i] = watch.Route{Source: watch.KindBMP + ":" + u.Router.String(), Peer: u.Peer, PeerAS: u.PeerAS,
			Prefix: u.Prefix, Origin: u.Origin, Path: u.Path, Withdraw: u.Withdraw, At: u.At}
	}
	d.watch.Observe(rs)
}

// bmpRouters lists the BMP receiver's routers (none without bmp.listen).
func (d *Daemon) bmpRouters() []api.BMPRouter {
	r := d.receiver()
	if r == nil {
		return nil
	}
	st := r.Status()
	out := make([]api.BMPRouter, len(st))
	for i, s := range st {
		out[i] = api.BMPRouter{Address: s.Addr.String(), Name: s.Name, Description: s.Description, State: s.State, Since: s.Since,
			Connections: s.Connections, Peers: s.Peers, Routes: s.Routes, Messages: s.Messages, LastMessage: s.LastMessage,
			Errors: s.Errors, LastError: s.LastError, LastErrorAt: s.LastErrorAt}
	}
	return out
}

// metricBMP is the routers' state for the asfence_bmp_* metrics.
func (d *Daemon) metricBMP() []metrics.BMPRouter {
	rs := d.bmpRouters()
	out := make([]metrics.BMPRouter, len(rs))
	for i, r := range rs {
		out[i] = metrics.BMPRouter{Address: r.Address, Name: r.Name, Up: r.State == bmp.StateUp, Peers: r.Peers, Routes: r.Routes,
			Messages: r.Messages, Errors: r.Errors, LastMessage: r.LastMessage}
	}
	return out
}

// bmpChanged reports whether the bmp: block changed.
func bmpChanged(a, b *config.BMP) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Listen != b.Listen || a.MaxRoutesPerRouter != b.MaxRoutesPerRouter || !slices.Equal(a.Routers, b.Routers)
}
