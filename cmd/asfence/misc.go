package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/asfence/asfence/filters"
)

func (a *app) vendorsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vendors",
		Short: "List the vendor IDs that generate and outputs accept",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, v := range filters.Vendors() {
				fmt.Fprintln(a.stdout, v)
			}
			return nil
		},
	}
}

func (a *app) checkConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Validate a config file (exit 0, or 2 with the errors)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := loadConfig(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: ok (%d targets)\n", cfg.Path, len(cfg.TargetList))
			return nil
		},
	}
}
