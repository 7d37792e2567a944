package main

import (
	"github.com/spf13/cobra"

	"github.com/asfence/asfence/report"
)

func (a *app) reportCmd() *cobra.Command {
	var f inputFlags
	var format string
	c := &cobra.Command{
		Use:   "report",
		Short: "Sum up per target what the sources attest and how far they agree",
		Long: `Sum up per target the address space (IPv4 addresses, IPv6 /48s) each source
and kind of source attests, how far the sources agree (prefixes by the number
of kinds attesting them, the space each two sources both attest), the
prefixes only one source attests, space attributed to a target but announced
by others (upstreams), cloud/hosting ranges, name-only ASNs, the policy's
drops and the largest prefixes.

--format html writes one self-contained page (inline CSS and SVG charts, no
script) to open in a browser: asfence report --offline --format html > report.html
Exit status: 0 ok, 1 failure (all sources failed), 2 bad usage or config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" && format != "html" {
				return usagef("--format must be text, json or html, not %q", format)
			}
			s, cfg, err := a.snapshot(cmd.Context(), &f)
			if err != nil {
				return err
			}
			r := report.Build(s, cfg.PolicyRules.Apply(s))
			switch format {
			case "json":
				return r.WriteJSON(a.stdout)
			case "html":
				return r.WriteHTML(a.stdout)
			}
			return r.WriteText(a.stdout)
		},
	}
	f.register(c)
	c.Flags().StringVar(&format, "format", "text", "output format: text, json or html")
	return c
}
