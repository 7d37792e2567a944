package daemon

import (
	"slices"

	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/bmp"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/metrics"
	"github.com/asfence/asfence/internal/watch"
)

// startBMP starts the BMP receiver on bmp.listen (nothing without it): the
// routes routers report go to the live watch. A listener that cannot be
// bound stops the start.
func (d *Daemon) startBMP() error {
	cfg := d.config()
	if cfg.BMP == nil || cfg.BMP.Listen == "" {
		return nil
	}
	r, err := bmp.New(bmp.Config{Listen: cfg.BMP.Listen, Routers: cfg.BMP.RouterAddrs(),
		MaxRoutesPerRouter: cfg.BMP.MaxRoutesPerRouter, Logger: d.log}, d.onBMP)
	if err != nil {
		return err
	}
	d.bmp = r
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := r.Serve(d.runCtx); err != nil {
			d.log.WithError(err).Error("bmp: the receiver stopped: routers' routes are no longer watched")
		}
	}()
	return nil
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
	if d.bmp == nil {
		return nil
	}
	st := d.bmp.Status()
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

// bmpChanged reports whether the bmp: block changed (the receiver takes
// it at start only; the watch: block applies on reload).
func bmpChanged(a, b *config.BMP) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Listen != b.Listen || a.MaxRoutesPerRouter != b.MaxRoutesPerRouter || !slices.Equal(a.Routers, b.Routers)
}
