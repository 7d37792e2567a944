package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) generateCmd() *cobra.Command {
	return &cobra.Command{Use: "generate", Short: "Generate vendor router filters",
		RunE: func(*cobra.Command, []string) error { return errors.New("generate: not implemented yet") }}
}

func (a *app) diffCmd() *cobra.Command {
	return &cobra.Command{Use: "diff OLD.json NEW.json", Short: "Show what changed between two snapshots",
		RunE: func(*cobra.Command, []string) error { return errors.New("diff: not implemented yet") }}
}
