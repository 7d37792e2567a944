package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/spf13/cobra"
)

func (a *app) peersCmd() *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the running daemon's BGP neighbors: state and routes sent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.apiClient("peers")
			if err != nil {
				return err
			}
			ps, err := client.Peers(cmd.Context())
			if err != nil {
				return err
			}
			if f.format == "json" {
				if ps == nil {
					ps = []bgp.PeerStatus{}
				}
				out := map[string]any{"peers": ps}
				if b, err := client.BMP(cmd.Context()); err == nil && len(b.Routers) > 0 {
					out["bmp_routers"] = b.Routers
				}
				return writeJSONOut(a.stdout, out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tASN\tDESCRIPTION\tSTATE\tUPTIME\tSENT\tRECEIVED\tLAST ERROR\tLAST NOTIFICATION")
			for _, p := range ps {
				notif := ""
				if n := p.LastNotification; n != nil {
					notif = fmt.Sprintf("%s %d/%d %s at %s", n.Direction, n.Code, n.Subcode, n.Text, n.At.UTC().Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Address, p.ASN, p.Description, p.State, p.Uptime,
					familyCounts(p.Sent), familyCounts(p.Received), p.LastError, notif)
			}
			if len(ps) == 0 {
				fmt.Fprintln(tw, "(no BGP neighbors configured)")
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return printBMPRouters(cmd.Context(), a.stdout, client)
		},
	}
	f.register(c, true)
	return c
}

// familyCounts prints per-family counts in a fixed order ("ipv4-unicast=3 ...").
func familyCounts(m map[string]int) string {
	var out []string
	for _, fam := range []string{"ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"} {
		if n, ok := m[fam]; ok {
			out = append(out, fmt.Sprintf("%s=%d", fam, n))
		}
	}
	for _, fam := range slices.Sorted(maps.Keys(m)) {
		if !strings.Contains(strings.Join(out, " "), fam+"=") {
			out = append(out, fmt.Sprintf("%s=%d", fam, m[fam]))
		}
	}
	return strings.Join(out, " ")
}
