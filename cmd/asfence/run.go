package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/daemon"
	"github.com/spf13/cobra"
)

func (a *app) runCmd() *cobra.Command {
	var cfgPath, snapshot, stateDir, outputDir string
	var offline bool
	c := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the daemon: resolve on the schedule, announce over BGP, write vendor files",
		Long: `Run the daemon.

At start it announces the last applied set from the state store, then on the
config's schedule resolves the targets, applies the policy and, unless the
change guard holds the change for approval, announces the new set (delta
only) and writes the configured vendor files.

SIGHUP reloads the config (a config with errors is rejected and the running
one stays) and runs; SIGTERM stops cleanly (BGP graceful restart keeps the
routes on the peers).
Exit status: 0 stopped, 1 failure (e.g. a damaged state store), 2 bad
usage or config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return usagef("run: --config FILE is required")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if snapshot != "" {
				if _, err := asn.ReadSnapshotFile(snapshot); err != nil {
					return usagef("--snapshot: %v", err)
				}
			}
			log := daemon.NewLogger(cfg.Log, a.stderr)
			d, err := daemon.New(daemon.Options{Config: cfg, Offline: offline, Snapshot: snapshot, Version: a.version, Log: log,
				StateDir: stateDir, OutputDir: outputDir})
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			ctx := cmd.Context()
			go func() {
				for {
					select {
					case <-hup:
						select {
						case reload <- struct{}{}:
						default: // a reload is already queued
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			return d.Serve(ctx, reload, func() {
				log.WithField("api", d.APIAddr()).Info("asfence " + a.version + " running")
			})
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "config file (required)")
	c.Flags().BoolVar(&offline, "offline", false, "resolve from the embedded snapshot only (no registry queries)")
	c.Flags().StringVar(&snapshot, "snapshot", "", "resolve from this Snapshot JSON file, read at every run (implies --offline)")
	c.Flags().StringVar(&stateDir, "state-dir", "", "state directory (overrides the config's state_dir)")
	c.Flags().StringVar(&outputDir, "output-dir", "", "directory for the vendor files (overrides the config's output_dir)")
	return c
}
