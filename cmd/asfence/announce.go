package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/daemon"
)

func (a *app) announceCmd() *cobra.Command {
	var f inputFlags
	var graceful bool
	c := &cobra.Command{
		Use:   "announce --config F [--offline] [--snapshot F]",
		Short: "Announce the current Intent over BGP until interrupted",
		Long: `Announce the targets' prefixes as RTBH routes and/or FlowSpec rules to the
neighbors of the config's bgp: block, with the embedded BGP speaker, until
SIGINT or SIGTERM. It is the speaker without the daemon: for labs (e.g. a
containerlab topology) and for reviewing what routers would receive.

The Intent comes from the registries, or with --offline from the embedded
snapshot (or --snapshot F), through the config's policy. Peer state changes
and what each peer was sent are logged to stderr.

On exit the sessions are closed with a CEASE, so peers drop the routes at
once; with --graceful they are left to close with the process, and peers
with graceful restart keep the routes for restart_time.
Exit status: 0 after an interrupt, 1 failure, 2 bad usage or config (no
bgp: block).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.config == "" {
				return usagef("announce needs --config FILE with a bgp: block")
			}
			ctx := cmd.Context()
			s, cfg, err := a.snapshot(ctx, &f)
			if err != nil {
				// Also when every source failed: an empty answer would
				// withdraw nothing but announce nothing either.
				return err
			}
			if cfg.BGP == nil {
				return usagef("%s: no bgp: block: announce needs the speaker's asn, router_id and neighbors", cfg.Path)
			}
			log := daemon.NewLogger(cfg.Log, a.stderr)
			in := cfg.PolicyRules.Apply(s)
			names := make([]string, len(cfg.TargetList))
			for i, t := range cfg.TargetList {
				names[i] = t.Name
			}
			sp, err := bgp.New(bgp.Options{
				Config: *cfg.BGP, Blackhole: cfg.Blackhole, FlowSpec: cfg.FlowSpec,
				Log: logrus.NewEntry(log), Protect: cfg.PolicyRules.Protect, AllowBogons: cfg.PolicyRules.AllowBogons,
				Targets: names,
			})
			if err != nil {
				return usageError{err}
			}
			for _, t := range in.Targets {
				log.WithFields(logrus.Fields{"target": t.Name, "id": t.ID, "prefixes": len(t.Prefixes)}).Info("announce: target")
			}
			if err := sp.Start(ctx, in); err != nil {
				return err
			}
			watchPeers(ctx, sp, log)
			// The command's context is done: stop with a fresh one.
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sp.Stop(sctx, graceful); err != nil {
				return fmt.Errorf("announce: stop: %w", err)
			}
			if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().BoolVar(&graceful, "graceful", false, "on exit, leave the sessions to close with the process (no CEASE): peers with graceful restart keep the routes")
	return c
}

// watchPeers logs, until ctx is done, each peer's state and what it was
// sent whenever either changes (the speaker logs the state changes too).
// Counting what was sent walks the RIB, so it polls every few seconds.
func watchPeers(ctx context.Context, sp *bgp.Speaker, log *logrus.Logger) {
	type seen struct {
		state string
		sent  map[string]int
	}
	last := map[string]seen{}
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		ps, err := sp.Peers(ctx)
		if err != nil && ctx.Err() == nil {
			log.WithError(err).Warn("announce: peers")
		}
		for _, p := range ps {
			prev, ok := last[p.Address]
			if ok && prev.state == p.State && maps.Equal(prev.sent, p.Sent) {
				continue
			}
			last[p.Address] = seen{p.State, p.Sent}
			f := logrus.Fields{"peer": p.Address, "asn": p.ASN, "state": p.State}
			for fam, n := range p.Sent {
				f["sent_"+fam] = n
			}
			if p.LastError != "" && p.State != "established" {
				f["last_error"] = p.LastError
			}
			log.WithFields(f).Info("announce: peer")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
