package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/asfence/asfence/internal/api"
)

// printBMPRouters adds the routers reporting over BMP to `asfence peers`
// (nothing when the daemon has no BMP receiver, or is older).
func printBMPRouters(ctx context.Context, w io.Writer, client *api.Client) error {
	b, err := client.BMP(ctx)
	if err != nil || b.Listen == "" {
		return nil
	}
	fmt.Fprintf(w, "\nBMP routers (bmp.listen %s):\n", b.Listen)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tNAME\tSTATE\tSINCE\tPEERS\tROUTES\tLAST MESSAGE\tERRORS\tLAST ERROR")
	for _, r := range b.Routers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", r.Address, r.Name, r.State, stamp(r.Since), r.Peers, r.Routes,
			stamp(r.LastMessage), r.Errors, r.LastError)
	}
	if len(b.Routers) == 0 {
		fmt.Fprintln(tw, "(no router has connected)")
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
