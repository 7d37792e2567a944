package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) runCmd() *cobra.Command {
	return &cobra.Command{Use: "run", Short: "Run the daemon",
		RunE: func(*cobra.Command, []string) error { return errors.New("run: not implemented yet") }}
}

// addDaemonClientCmds adds the commands that read the daemon's state
// (history, show, approve, reject, peers).
func (a *app) addDaemonClientCmds(root *cobra.Command) {}
