package daemon

import (
	"context"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/config"
)

// The daemon drives the embedded speaker (*bgp.Speaker) through these of
// its methods, always under spMu:
//   - Start loads the Intent before any neighbor is added, so peers get the
//     whole set in their first table transfer (the first applied run when
//     nothing was announced before);
//   - Resume is Start with the set a previous process announced (after a
//     crash or restart): peers holding it are told it was kept (graceful
//     restart), so they drop nothing that is still in it;
//   - Apply changes the announced set, sending only the delta;
//   - reconfigureSpeaker applies a reloaded config without resetting
//     sessions that did not change;
//   - Stop(ctx, true) ends the sessions gracefully: peers keep the routes
//     (graceful restart) until the daemon is back.

// newSpeaker creates the BGP speaker for the config's bgp: block; feed
// neighbors' routes go to the live watch.
func (d *Daemon) newSpeaker(cfg *config.Config) (*bgp.Speaker, error) {
	names := make([]string, len(cfg.TargetList))
	for i, t := range cfg.TargetList {
		names[i] = t.Name
	}
	return bgp.New(bgp.Options{
		Config:      *cfg.BGP,
		Blackhole:   cfg.Blackhole,
		FlowSpec:    cfg.FlowSpec,
		Log:         d.log,
		Feed:        feedHandler{d.watch},
		Protect:     cfg.PolicyRules.Protect,
		AllowBogons: cfg.PolicyRules.AllowBogons,
		Targets:     names,
	})
}

// reconfigureSpeaker applies a reloaded config's bgp:, blackhole: and
// flowspec: blocks to a running speaker without resetting sessions that
// did not change.
func reconfigureSpeaker(ctx context.Context, sp *bgp.Speaker, cfg *config.Config) error {
	if err := sp.UpdateNeighbors(ctx, *cfg.BGP); err != nil {
		return err
	}
	_, err := sp.UpdateAttributes(ctx, cfg.Blackhole, cfg.FlowSpec)
	return err
}
