package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/atomicfile"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

func (a *app) generateCmd() *cobra.Command {
	var f inputFlags
	var vendor, out string
	c := &cobra.Command{
		Use:   "generate --vendor ID|all [--out FILE|DIR]",
		Short: "Generate vendor router filters",
		Long: `Generate router configuration that rejects the targets' routes (prefix
lists, an origin AS-path filter and a policy using both) and, where the
platform has one, a data-plane filter dropping traffic from and to them.

Without --out the file goes to stdout. With --out DIR (required for
--vendor all) each vendor's file is written there atomically (temporary
file + rename) under its usual name (see "asfence vendors"). A summary goes
to stderr: per target the ASNs and prefixes, the entries of every list,
and what the policy dropped and why.
A source that failed (also in a --snapshot file's "incomplete" list) makes
it write nothing and exit 1, unless --allow-incomplete: the filter would
lack that source's prefixes.
Exit status: 0 ok, 1 failure (a source failed, a list over
outputs.max_entries), 2 bad usage or config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vendors, err := selectVendors(vendor)
			if err != nil {
				return err
			}
			if len(vendors) > 1 && out == "" {
				return usagef("--vendor all writes %d files: it needs --out DIR", len(vendors))
			}
			dir, err := outputDir(out, len(vendors) > 1)
			if err != nil {
				return err
			}
			s, cfg, err := a.snapshot(cmd.Context(), &f)
			if err != nil {
				// Also when every source failed: filters from an empty
				// answer would unblock everything, so nothing is written.
				return err
			}
			// A filter missing a failed source's prefixes unblocks them
			// once pushed (an IRR outage wiping prefix lists): nothing is
			// written unless the operator accepts it.
			if !f.allowIncomplete {
				if err := incompleteError(s, "nothing written"); err != nil {
					return err
				}
			}
			in := cfg.PolicyRules.Apply(s)
			prep := filters.Prepare(in)
			opts := make([]filters.RenderOptions, len(vendors))
			lists := make([][]filters.ListCount, len(vendors))
			for i, v := range vendors {
				opts[i] = cfg.RenderOptions(v, a.version, regenerateLine(&f, v, out))
				lists[i] = prep.Lists(opts[i])
			}
			var written []string
			if out == "" {
				// Rendered whole first: a failed render prints nothing.
				files, err := prep.RenderAll(opts)
				if err != nil {
					return err
				}
				if _, err := a.stdout.Write(files[0]); err != nil {
					return fmt.Errorf("write stdout: %w", err)
				}
			} else {
				paths := make([]string, len(vendors))
				for i, v := range vendors {
					paths[i] = out
					if dir {
						paths[i] = filepath.Join(out, filters.FileName(v))
					}
				}
				// Each file renders straight into its temporary file
				// (concurrently); all are renamed into place only when
				// every one rendered: an error writes no file.
				sizes, err := writeAll(paths, func(ws []io.Writer) error { return prep.RenderAllTo(ws, opts) })
				if err != nil {
					return err
				}
				for i, path := range paths {
					written = append(written, fmt.Sprintf("%s (%d bytes)", path, sizes[i]))
				}
			}
			writeSummary(a.stderr, in, vendors, lists, written)
			return nil
		},
	}
	f.register(c)
	f.registerAllowIncomplete(c)
	c.Flags().StringVar(&vendor, "vendor", "", "vendor ID (see 'asfence vendors') or all")
	c.Flags().StringVar(&out, "out", "", "output file, or directory (required with --vendor all)")
	return c
}

// selectVendors expands the --vendor flag.
func selectVendors(v string) ([]string, error) {
	switch {
	case v == "":
		return nil, usagef("--vendor is required: one of %s, or all", strings.Join(filters.Vendors(), ", "))
	case v == "all":
		return filters.Vendors(), nil
	case filters.KnownVendor(v):
		return []string{v}, nil
	}
	return nil, usagef("unknown vendor %q: one of %s, or all", v, strings.Join(filters.Vendors(), ", "))
}

// outputDir says whether --out names a directory; with needDir it must be
// one (created if missing).
func outputDir(out string, needDir bool) (bool, error) {
	if out == "" {
		return false, nil
	}
	st, err := os.Stat(out)
	switch {
	case err == nil && st.IsDir():
		return true, nil
	case err == nil && needDir:
		return false, usagef("--out %s: not a directory (--vendor all writes one file per vendor)", out)
	case err == nil:
		return false, nil
	case errors.Is(err, os.ErrNotExist) && needDir:
		if err := os.MkdirAll(out, 0o755); err != nil {
			return false, fmt.Errorf("--out: %w", err)
		}
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("--out: %w", err)
}

// regenerateLine is the command that reproduces a file, for its header.
func regenerateLine(f *inputFlags, vendor, out string) string {
	parts := []string{"asfence", "generate", "--vendor", vendor}
	if f.config != "" {
		parts = append(parts, "--config", f.config)
	}
	switch {
	case f.snapshot != "":
		parts = append(parts, "--snapshot", f.snapshot)
	case f.offline:
		parts = append(parts, "--offline")
	}
	for _, t := range f.targets {
		parts = append(parts, "--target", t)
	}
	if out != "" {
		parts = append(parts, "--out", out)
	}
	return strings.Join(parts, " ")
}

// writeAll writes files through atomicfile: write gets one writer per
// path; when it and every flush succeed, all files are staged, then
// renamed into place (readers see an old or a new file, never a partial
// one; a render error writes no file). It returns the sizes written.
func writeAll(paths []string, write func(ws []io.Writer) error) ([]int64, error) {
	var open []*atomicfile.Writer
	var staged []*atomicfile.Temp
	defer func() {
		for _, w := range open {
			w.Discard()
		}
		for _, t := range staged {
			t.Discard() // nothing after Rename
		}
	}()
	bws := make([]*bufio.Writer, len(paths))
	ws := make([]io.Writer, len(paths))
	for i, path := range paths {
		w, err := atomicfile.Create(path, 0o644)
		if err != nil {
			return nil, err
		}
		open = append(open, w)
		bws[i] = bufio.NewWriterSize(w, 256<<10)
		ws[i] = bws[i]
	}
	if err := write(ws); err != nil {
		return nil, err
	}
	sizes := make([]int64, len(paths))
	for i, bw := range bws {
		if err := bw.Flush(); err != nil {
			return nil, fmt.Errorf("write %s: %w", paths[i], err)
		}
		sizes[i] = open[i].Size()
	}
	for len(open) > 0 {
		t, err := open[0].Stage()
		open = open[1:] // staged or removed
		if err != nil {
			return nil, err
		}
		staged = append(staged, t)
	}
	dirs := map[string]bool{}
	for i, t := range staged {
		if err := t.Rename(); err != nil {
			return nil, err // the files renamed before it stay: each is whole
		}
		dirs[filepath.Dir(paths[i])] = true
	}
	for dir := range dirs {
		atomicfile.SyncDir(dir)
	}
	return sizes, nil
}

// writeSummary prints the one-screen summary of a generation.
func writeSummary(w io.Writer, in *policy.Intent, vendors []string, lists [][]filters.ListCount, written []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "snapshot %s", in.SnapshotTime.UTC().Format(time.RFC3339))
	if in.Generator != "" {
		fmt.Fprintf(tw, " (%s)", in.Generator)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TARGET\tASNS\tIPV4\tIPV6")
	for _, t := range in.Targets {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", t.Name, len(t.ASNs), len(t.Exact(prefixset.IPv4)), len(t.Exact(prefixset.IPv6)))
	}
	tw.Flush()
	for i, v := range vendors {
		parts := make([]string, len(lists[i]))
		for j, l := range lists[i] {
			parts[j] = fmt.Sprintf("%s %d", l.Name, l.Entries)
		}
		fmt.Fprintf(w, "%s: %s\n", v, strings.Join(parts, ", "))
	}
	writeDrops(w, in.Dropped)
	for _, inc := range in.Incomplete {
		t := inc.Target
		if t == "" {
			t = "all targets"
		}
		fmt.Fprintf(w, "INCOMPLETE: source %s failed for %s: %s\n", inc.Source, t, inc.Error)
	}
	for _, p := range written {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
}

// writeDrops prints the drop count per reason and the first few examples.
func writeDrops(w io.Writer, ds []policy.Drop) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "dropped by policy: none")
		return
	}
	counts := policy.DropCounts(ds)
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "dropped by policy: %d\n", len(ds))
	for _, r := range reasons {
		var ex []string
		for _, d := range ds {
			if d.Reason != r {
				continue
			}
			what := d.Prefix
			if what == "" {
				what = fmt.Sprintf("AS%d", d.ASN)
			}
			if len(ex) < 3 {
				ex = append(ex, fmt.Sprintf("%s %s (%s)", d.Target, what, d.Detail))
			}
		}
		more := ""
		if counts[r] > len(ex) {
			more = fmt.Sprintf("; %d more", counts[r]-len(ex))
		}
		fmt.Fprintf(w, "  %s: %d: %s%s\n", r, counts[r], strings.Join(ex, "; "), more)
	}
}

func (a *app) diffCmd() *cobra.Command {
	var configPath, vendor string
	c := &cobra.Command{
		Use:   "diff OLD.json NEW.json [--vendor ID]",
		Short: "Show what changed between two snapshots",
		Long: `Compare two Snapshot JSON files after policy (the default policy, or the
one of --config): per target the ASNs and prefixes added and removed, with
their evidence. With --vendor, also the unified diff of the rendered
configuration and, where the platform allows it, the incremental commands
that apply only the change.
Exit status: 0 ok (changed or not), 1 failure, 2 bad usage or config.`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if vendor != "" && !filters.KnownVendor(vendor) {
				return usagef("unknown vendor %q: one of %s", vendor, strings.Join(filters.Vendors(), ", "))
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			var ins [2]*policy.Intent
			for i, path := range args {
				s, err := asn.ReadSnapshotFile(path)
				if err != nil {
					return err
				}
				ins[i] = cfg.PolicyRules.Apply(s)
			}
			ch := policy.Compare(ins[0], ins[1])
			writeChange(a.stdout, ch)
			if vendor == "" {
				return nil
			}
			o := cfg.RenderOptions(vendor, a.version, "")
			var files [2][]byte
			for i := range ins {
				o.Regenerate = "asfence generate --vendor " + vendor + " --snapshot " + args[i]
				files[i], err = filters.Render(ins[i], o)
				if err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "\n=== %s: configuration diff\n", vendor)
			if d := filters.UnifiedDiff(args[0]+" ("+vendor+")", args[1]+" ("+vendor+")", files[0], files[1]); d != "" {
				io.WriteString(a.stdout, d)
			} else {
				fmt.Fprintln(a.stdout, "(identical)")
			}
			fmt.Fprintf(a.stdout, "\n=== %s: incremental commands\n", vendor)
			up, err := filters.IncrementalCommands(vendor, ins[0], ins[1], o)
			if err != nil {
				return err
			}
			if up.FullReplace != "" {
				fmt.Fprintf(a.stdout, "(none: full replace: %s)\n", up.FullReplace)
				return nil
			}
			io.WriteString(a.stdout, up.Commands)
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "config file whose policy applies (default: built-in policy)")
	c.Flags().StringVar(&vendor, "vendor", "", "also show the rendered config diff and incremental commands for this vendor")
	return c
}

// writeChange prints per target what was added and removed, with evidence.
func writeChange(w io.Writer, ch policy.Change) {
	added, removed := ch.Counts()
	fmt.Fprintf(w, "%d prefixes added, %d removed\n", added, removed)
	for _, t := range ch.Targets {
		fmt.Fprintf(w, "\ntarget %s: %d -> %d prefixes", t.Target, t.Before, t.After)
		if t.Empty() {
			fmt.Fprintln(w, ", no change")
			continue
		}
		fmt.Fprintln(w)
		for _, x := range t.AddedASNs {
			fmt.Fprintf(w, "  + AS%d\n", x)
		}
		for _, x := range t.RemovedASNs {
			fmt.Fprintf(w, "  - AS%d\n", x)
		}
		for _, p := range t.Added {
			fmt.Fprintf(w, "  + %s%s\n", p.Prefix, evidenceText(p))
		}
		for _, p := range t.Removed {
			fmt.Fprintf(w, "  - %s%s\n", p.Prefix, evidenceText(p))
		}
	}
}

func evidenceText(p asn.Prefix) string {
	var parts []string
	for _, e := range p.Evidence {
		s := e.Source
		if e.Detail != "" {
			s += ": " + e.Detail
		}
		if !e.Seen.IsZero() {
			s += " (" + e.Seen.UTC().Format("2006-01-02") + ")"
		}
		parts = append(parts, s)
	}
	if len(p.Origins) > 0 {
		o := make([]string, len(p.Origins))
		for i, a := range p.Origins {
			o[i] = fmt.Sprintf("AS%d", a)
		}
		parts = append([]string{"origin " + strings.Join(o, " ")}, parts...)
	}
	if len(parts) == 0 {
		return ""
	}
	return "  [" + strings.Join(parts, "; ") + "]"
}
