package daemon

import (
	"context"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/policy"
)

// newSpeaker creates the BGP speaker for the config's bgp: block; feed
// neighbors' routes go to the live watch.
func (d *Daemon) newSpeaker(cfg *config.Config) (Speaker, error) {
	names := make([]string, len(cfg.TargetList))
	for i, t := range cfg.TargetList {
		names[i] = t.Name
	}
	s, err := bgp.New(bgp.Options{
		Config:      *cfg.BGP,
		Blackhole:   cfg.Blackhole,
		FlowSpec:    cfg.FlowSpec,
		Log:         d.log,
		Feed:        feedHandler{d.watch},
		Protect:     cfg.PolicyRules.Protect,
		AllowBogons: cfg.PolicyRules.AllowBogons,
		Targets:     names,
	})
	if err != nil {
		return nil, err
	}
	return bgpSpeaker{s}, nil
}

// bgpSpeaker adapts *bgp.Speaker to the daemon's Speaker.
type bgpSpeaker struct{ s *bgp.Speaker }

func (b bgpSpeaker) Start(ctx context.Context, in *policy.Intent) error { return b.s.Start(ctx, in) }

func (b bgpSpeaker) Resume(ctx context.Context, in *policy.Intent) error { return b.s.Resume(ctx, in) }

func (b bgpSpeaker) Apply(ctx context.Context, in *policy.Intent) (map[string]int, error) {
	c, err := b.s.Apply(ctx, in)
	if err != nil {
		return nil, err
	}
	out := map[string]int{"added": c.Added, "withdrawn": c.Withdrawn}
	if c.Replaced > 0 {
		out["replaced"] = c.Replaced
	}
	if c.Refused > 0 {
		out["refused"] = c.Refused
	}
	return out, nil
}

func (b bgpSpeaker) Peers(ctx context.Context) ([]api.Peer, error) {
	ps, err := b.s.Peers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Peer, 0, len(ps))
	for _, p := range ps {
		ap := api.Peer{Address: p.Address, Description: p.Description, ASN: p.ASN, State: p.State,
			Established: p.State == "established", EstablishedSince: p.EstablishedSince,
			Families: p.Families, Sent: p.Sent, Received: p.Received, LastError: p.LastError}
		if n := p.LastNotification; n != nil {
			ap.LastNotification = &api.Notification{Direction: n.Direction, Code: n.Code, Subcode: n.Subcode, Text: n.Text, At: n.At}
		}
		if p.Uptime > 0 {
			ap.Uptime = p.Uptime.Round(time.Second).String()
		}
		if ap.Sent == nil {
			ap.Sent = map[string]int{}
		}
		out = append(out, ap)
	}
	return out, nil
}

func (b bgpSpeaker) Reconfigure(ctx context.Context, cfg *config.Config) error {
	if err := b.s.UpdateNeighbors(ctx, *cfg.BGP); err != nil {
		return err
	}
	_, err := b.s.UpdateAttributes(ctx, cfg.Blackhole, cfg.FlowSpec)
	return err
}

func (b bgpSpeaker) Stop(ctx context.Context, graceful bool) error { return b.s.Stop(ctx, graceful) }
