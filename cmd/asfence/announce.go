package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) announceCmd() *cobra.Command {
	return &cobra.Command{Use: "announce", Short: "Announce the current Intent over BGP until interrupted",
		RunE: func(*cobra.Command, []string) error { return errors.New("announce: not implemented yet") }}
}
