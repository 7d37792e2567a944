package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/sources"
	"github.com/asfence/asfence/internal/config"
)

// inputFlags are the flags shared by every command that needs a Snapshot.
type inputFlags struct {
	config   string
	offline  bool
	snapshot string
	targets  []string
	at       string
	// allowIncomplete accepts a result some of whose sources failed.
	allowIncomplete bool
}

func (f *inputFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.config, "config", "", "config file (default: built-in targets, embedded snapshot offline)")
	c.Flags().BoolVar(&f.offline, "offline", false, "use the embedded snapshot (or --snapshot): no network access")
	c.Flags().StringVar(&f.snapshot, "snapshot", "", "read this Snapshot JSON instead of resolving (implies --offline)")
	c.Flags().StringArrayVar(&f.targets, "target", nil, "only this target (repeatable)")
}

// registerAllowIncomplete adds --allow-incomplete (resolve, generate).
func (f *inputFlags) registerAllowIncomplete(c *cobra.Command) {
	c.Flags().BoolVar(&f.allowIncomplete, "allow-incomplete", false,
		"exit 0 even when a source failed (the result lacks what it would have given)")
}

// errAllFailed: every source failed; the (empty) result is still printed.
var errAllFailed = errors.New("all sources failed")

// errIncomplete: a source failed, so the result may lack prefixes (its
// own, or those of ASNs it would have found).
var errIncomplete = errors.New("a source failed")

// incompleteError reports the failed sources of s (nil when none failed),
// each once per target. The built-in seed ASNs are no answer: a target
// whose every prefix source failed is still reported.
func incompleteError(s *asn.Snapshot, what string) error {
	if len(s.Incomplete) == 0 {
		return nil
	}
	var b strings.Builder
	for i, in := range s.Incomplete {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(s.Incomplete)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		t := in.Target
		if t == "" {
			t = "all targets"
		}
		fmt.Fprintf(&b, "%s (%s): %s", in.Source, t, in.Error)
	}
	return fmt.Errorf("%w (failed source queries: %d; the result may lack prefixes): %s; %s (--allow-incomplete takes it as it is)",
		errIncomplete, len(s.Incomplete), b.String(), what)
}

// snapshot loads the config and produces a Snapshot for the selected
// targets: from a file, the embedded default, or the registries.
func (a *app) snapshot(ctx context.Context, f *inputFlags) (*asn.Snapshot, *config.Config, error) {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return nil, nil, err
	}
	targets, err := asn.SelectTargets(cfg.TargetList, f.targets)
	if err != nil {
		return nil, nil, usageError{err}
	}
	eng := asn.Engine{Generator: "asfence " + a.version}
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return nil, nil, usagef("--at: %v", err)
		}
		eng.Now = func() time.Time { return t }
	}
	in := sources.Input{SnapshotFile: f.snapshot, Offline: f.offline}
	s, _, err := sources.Load(ctx, in, cfg.Sources, targets, eng)
	if err != nil && (s == nil || in.Stored()) {
		return nil, nil, err
	}
	for _, in := range s.Incomplete {
		logrus.WithFields(logrus.Fields{"source": in.Source, "target": in.Target}).Warn("source failed: " + in.Error)
	}
	if err != nil {
		return s, cfg, fmt.Errorf("%w: %v", errAllFailed, err)
	}
	return s, cfg, nil
}

func (a *app) resolveCmd() *cobra.Command {
	var f inputFlags
	var format string
	c := &cobra.Command{
		Use:   "resolve",
		Short: "Resolve the targets' ASNs and prefixes, with evidence",
		Long: `Resolve which ASNs and prefixes belong to each target, and why.

Without --offline the registries in the config's sources: block are queried
(exactly those; without a sources: block, the public registries). A failed
source is listed as incomplete and the others' answers are still printed,
with exit status 1 unless --allow-incomplete.
Exit status: 0 ok, 1 a source failed (unless --allow-incomplete) or I/O
error, 2 bad usage or config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usagef("--format must be text or json, not %q", format)
			}
			s, _, err := a.snapshot(cmd.Context(), &f)
			if s == nil {
				return err
			}
			var werr error
			if format == "json" {
				werr = s.Encode(a.stdout)
			} else {
				werr = writeSnapshotText(a.stdout, s)
			}
			if err == nil && !f.allowIncomplete {
				err = incompleteError(s, "printed with its failures listed")
			}
			return errors.Join(err, werr)
		},
	}
	f.register(c)
	f.registerAllowIncomplete(c)
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	c.Flags().StringVar(&f.at, "at", "", "stamp the result with this RFC 3339 time (reproducible snapshots)")
	_ = c.Flags().MarkHidden("at")
	return c
}

// writeSnapshotText prints the table a person reads: one row per ASN with
// holder, prefix counts and sources.
func writeSnapshotText(w io.Writer, s *asn.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "snapshot %s", s.GeneratedAt.Format(time.RFC3339))
	if s.Generator != "" {
		fmt.Fprintf(tw, " (%s)", s.Generator)
	}
	fmt.Fprintln(tw)
	for _, t := range s.Targets {
		v4, v6 := 0, 0
		for _, p := range t.Prefixes {
			if p.Prefix.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
		fmt.Fprintf(tw, "\ntarget %s: %d ASNs, %d IPv4 + %d IPv6 prefixes\n", t.Name, len(t.ASNs), v4, v6)
		fmt.Fprintln(tw, "ASN\tHOLDER\tIPv4\tIPv6\tSOURCES")
		counted := map[uint32][2]int{}
		noOrigin := [2]int{}
		for _, p := range t.Prefixes {
			fam := 0
			if p.Prefix.Addr().Is6() {
				fam = 1
			}
			if len(p.Origins) == 0 {
				noOrigin[fam]++
			}
			for _, o := range p.Origins {
				c := counted[o]
				c[fam]++
				counted[o] = c
			}
		}
		for _, a := range t.ASNs {
			var srcs []string
			for _, e := range a.Evidence {
				if !slices.Contains(srcs, e.Source) {
					srcs = append(srcs, e.Source)
				}
			}
			name := a.Name
			if a.NameOnly {
				name += " (name-only)"
			}
			c := counted[a.ASN]
			fmt.Fprintf(tw, "AS%d\t%s\t%d\t%d\t%s\n", a.ASN, name, c[0], c[1], strings.Join(srcs, ","))
		}
		if noOrigin[0]+noOrigin[1] > 0 {
			var srcs []string
			for _, p := range t.Prefixes {
				if len(p.Origins) > 0 {
					continue
				}
				for _, e := range p.Evidence {
					if !slices.Contains(srcs, e.Source) {
						srcs = append(srcs, e.Source)
					}
				}
			}
			fmt.Fprintf(tw, "-\t(no origin given)\t%d\t%d\t%s\n", noOrigin[0], noOrigin[1], strings.Join(srcs, ","))
		}
	}
	if len(s.Incomplete) > 0 {
		fmt.Fprintln(tw, "\nINCOMPLETE: these sources failed, their facts are missing:")
		for _, in := range s.Incomplete {
			t := in.Target
			if t == "" {
				t = "all targets"
			}
			fmt.Fprintf(tw, "  %s (%s): %s\n", in.Source, t, in.Error)
		}
	}
	return tw.Flush()
}
