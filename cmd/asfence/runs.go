package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/spf13/cobra"
)

func (a *app) historyCmd() *cobra.Command {
	var f clientFlags
	var limit int
	var outcome string
	var before uint64
	c := &cobra.Command{
		Use:   "history",
		Short: "List the daemon's runs: when, what changed, what was held and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := f.resolve()
			if err != nil {
				return err
			}
			switch outcome {
			case "", store.Running, store.Applied, store.Held, store.Unchanged, store.Failed:
			default:
				return usagef("--outcome %q: want running, applied, held, unchanged or failed", outcome)
			}
			if limit < 1 {
				return usagef("--limit must be at least 1")
			}
			o := store.ListOptions{Limit: limit, Outcome: outcome, Before: before}
			var runs []*store.Run
			err = t.read(cmd.Context(),
				func(s *store.Store) (err error) { runs, err = s.Runs(o); return err },
				func(c *api.Client) (err error) { runs, err = c.Runs(cmd.Context(), o); return err })
			if err != nil {
				return err
			}
			if f.format == "json" {
				if runs == nil {
					runs = []*store.Run{}
				}
				return writeJSONOut(a.stdout, map[string]any{"runs": runs})
			}
			return writeHistory(a.stdout, runs)
		},
	}
	f.register(c, true)
	c.Flags().IntVar(&limit, "limit", 50, "show at most this many runs")
	c.Flags().StringVar(&outcome, "outcome", "", "only runs with this outcome (applied, held, unchanged, failed)")
	c.Flags().Uint64Var(&before, "before", 0, "only runs older than this run id (paging)")
	return c
}

func sourcesCell(r *store.Run) string {
	if len(r.Sources) == 0 {
		return "-"
	}
	names := map[string]bool{}
	failed := map[string]bool{}
	for _, s := range r.Sources {
		names[s.Source] = true
		if !s.OK {
			failed[s.Source] = true
		}
	}
	return fmt.Sprintf("%d/%d ok", len(names)-len(failed), len(names))
}

func runNote(r *store.Run) string {
	var notes []string
	if r.Error != "" {
		notes = append(notes, r.Error)
	}
	if len(r.Guard) > 0 {
		notes = append(notes, strings.Join(r.Guard, "; "))
	}
	if r.Decision != nil {
		d := r.Decision.Action
		if r.Decision.SupersededBy != 0 {
			d += fmt.Sprintf(" by run %d", r.Decision.SupersededBy)
		}
		if r.Decision.By != "" {
			d += " by " + r.Decision.By
		}
		notes = append(notes, d+" "+r.Decision.At.Format(time.RFC3339))
	} else if r.Outcome == store.Held {
		notes = append(notes, "WAITING FOR APPROVAL")
	}
	if r.Carried.Prefixes > 0 {
		notes = append(notes, fmt.Sprintf("%d prefixes kept from failed sources", r.Carried.Prefixes))
	}
	return strings.Join(notes, "; ")
}

func writeHistory(w io.Writer, runs []*store.Run) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTART\tTRIGGER\tOUTCOME\tIPv4\tIPv6\tADDED\tREMOVED\tSOURCES\tNOTE")
	for _, r := range runs {
		v4, v6 := 0, 0
		for _, t := range r.Targets {
			v4 += t.IPv4
			v6 += t.IPv6
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t+%d\t-%d\t%s\t%s\n", r.ID, r.Start.Local().Format("2006-01-02 15:04:05"),
			r.Trigger, r.Outcome, v4, v6, r.Diff.Added, r.Diff.Removed, sourcesCell(r), runNote(r))
	}
	if len(runs) == 0 {
		fmt.Fprintln(tw, "(no runs)")
	}
	return tw.Flush()
}

func (a *app) showCmd() *cobra.Command {
	var f clientFlags
	var maxLines int
	c := &cobra.Command{
		Use:   "show RUN",
		Short: "Show one run with its diff (prefixes added and removed, with evidence)",
		Long: `Show one run with its diff: prefixes added and removed per target, with
evidence, and the diffs of the vendor files it wrote.

The change is read a page at a time (from the store, or from the running
daemon's API), so a run of millions of prefixes is shown without holding it
in memory. --format json prints the whole run, change and diffs, always
complete (--max-prefixes applies to the text only).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			if maxLines < 0 {
				return usagef("--max-prefixes must be 0 (all) or more")
			}
			t, err := f.resolve()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			show := func(rd runReader) error {
				r, sum, err := rd.summary(ctx, id)
				if err != nil {
					return err
				}
				if f.format == "json" {
					return writeRunJSON(ctx, a.stdout, rd, r, sum)
				}
				return writeRun(ctx, a.stdout, rd, r, sum, maxLines)
			}
			return t.read(ctx,
				func(s *store.Store) error { return show(storeRuns{s}) },
				func(c *api.Client) error { return show(apiRuns{c}) })
		},
	}
	f.register(c, true)
	c.Flags().IntVar(&maxLines, "max-prefixes", 200, "list at most this many added/removed prefixes per target (0: all)")
	return c
}

// runReader reads a run's change a page at a time: from the store of a
// stopped daemon, or from the running daemon's API.
type runReader interface {
	summary(ctx context.Context, id uint64) (*store.Run, *store.ChangeSummary, error)
	// prefixes calls fn with the pages of the list q selects.
	prefixes(ctx context.Context, id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) error
	// diff copies a vendor file's recorded diff to w.
	diff(ctx context.Context, id uint64, file string, w io.Writer) error
}

type storeRuns struct{ s *store.Store }

func (r storeRuns) summary(_ context.Context, id uint64) (*store.Run, *store.ChangeSummary, error) {
	return r.s.RunChange(id)
}

func (r storeRuns) prefixes(_ context.Context, id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) error {
	_, err := r.s.RunPrefixes(id, q, fn)
	return err
}

func (r storeRuns) diff(_ context.Context, id uint64, file string, w io.Writer) error {
	_, err := r.s.RunDiff(id, file, 0, -1, func(text string) error {
		_, err := io.WriteString(w, text)
		return err
	})
	return err
}

type apiRuns struct{ c *api.Client }

func (r apiRuns) summary(ctx context.Context, id uint64) (*store.Run, *store.ChangeSummary, error) {
	s, err := r.c.RunSummary(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if s.Change == nil {
		return s.Run, nil, nil
	}
	out := &store.ChangeSummary{}
	for _, t := range s.Change.Targets {
		out.Targets = append(out.Targets, t.ChangeTarget)
	}
	for _, d := range s.Change.Diffs {
		out.Diffs = append(out.Diffs, d.DiffFile)
	}
	return s.Run, out, nil
}

func (r apiRuns) prefixes(ctx context.Context, id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) error {
	_, err := r.c.RunPrefixes(ctx, id, q, fn)
	return err
}

func (r apiRuns) diff(ctx context.Context, id uint64, file string, w io.Writer) error {
	return r.c.RunDiff(ctx, id, file, w)
}

func writeRun(ctx context.Context, w io.Writer, rd runReader, r *store.Run, sum *store.ChangeSummary, maxLines int) error {
	fmt.Fprintf(w, "run %d (%s): %s\n", r.ID, r.Trigger, r.Outcome)
	fmt.Fprintf(w, "  start     %s\n", r.Start.Format(time.RFC3339))
	if !r.End.IsZero() {
		fmt.Fprintf(w, "  end       %s (%s)\n", r.End.Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Millisecond))
	}
	if !r.SnapshotTime.IsZero() {
		fmt.Fprintf(w, "  snapshot  %s\n", r.SnapshotTime.Format(time.RFC3339))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error     %s\n", r.Error)
	}
	for _, g := range r.Guard {
		fmt.Fprintf(w, "  held      %s\n", g)
	}
	if r.Decision != nil || r.Outcome == store.Held {
		fmt.Fprintf(w, "  decision  %s\n", runNote(&store.Run{Outcome: r.Outcome, Decision: r.Decision}))
	}
	for _, s := range r.Sources {
		if s.OK {
			fmt.Fprintf(w, "  source    %s: ok\n", s.Source)
		} else {
			t := s.Target
			if t == "" {
				t = "all targets"
			}
			fmt.Fprintf(w, "  source    %s (%s): FAILED: %s\n", s.Source, t, s.Error)
		}
	}
	if r.Carried.Prefixes+r.Carried.ASNs > 0 {
		fmt.Fprintf(w, "  carried   %d prefixes and %d ASNs kept because their sources failed\n", r.Carried.Prefixes, r.Carried.ASNs)
	}
	if c := r.BGP; c != nil {
		for _, k := range []struct {
			name   string
			n      int
			always bool
		}{{"added", c.Added, true}, {"refused", c.Refused, false}, {"replaced", c.Replaced, false}, {"withdrawn", c.Withdrawn, true}} {
			if k.always || k.n > 0 {
				fmt.Fprintf(w, "  bgp       %s %d\n", k.name, k.n)
			}
		}
		for _, fam := range slices.Sorted(maps.Keys(c.ByFamily)) {
			if fc := c.ByFamily[fam]; fc.Added+fc.Withdrawn+fc.Replaced > 0 {
				fmt.Fprintf(w, "  bgp       %s: added %d, withdrawn %d, replaced %d\n", fam, fc.Added, fc.Withdrawn, fc.Replaced)
			}
		}
	}
	for _, o := range r.Outputs {
		state := "unchanged"
		if o.Error != "" {
			state = "ERROR: " + o.Error
		} else if o.Changed {
			state = "written"
		}
		fmt.Fprintf(w, "  output    %s (%s): %s\n", o.File, o.Vendor, state)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "target %s: %d IPv4, %d IPv6 prefixes, %d ASNs\n", t.Target, t.IPv4, t.IPv6, t.ASNs)
	}
	if sum == nil {
		fmt.Fprintln(w, "\n(no diff recorded for this run)")
		return nil
	}
	for _, tc := range sum.Targets {
		if tc.Added+tc.Removed+len(tc.AddedASNs)+len(tc.RemovedASNs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\ndiff %s: %d -> %d prefixes (+%d -%d)", tc.Target, tc.Before, tc.After, tc.Added, tc.Removed)
		if len(tc.AddedASNs)+len(tc.RemovedASNs) > 0 {
			fmt.Fprintf(w, ", ASNs +%v -%v", tc.AddedASNs, tc.RemovedASNs)
		}
		fmt.Fprintln(w)
		for _, l := range []struct {
			sign, change string
			n            int
		}{{"+", store.ChangeAdded, tc.Added}, {"-", store.ChangeRemoved, tc.Removed}} {
			limit := l.n
			if maxLines > 0 {
				limit = min(l.n, maxLines)
			}
			if limit > 0 {
				err := rd.prefixes(ctx, r.ID, store.PrefixQuery{Target: tc.Target, Change: l.change, Limit: limit}, func(ps []asn.Prefix) error {
					for _, p := range ps {
						var src []string
						for _, e := range p.Evidence {
							src = append(src, e.Source)
						}
						if _, err := fmt.Fprintf(w, "  %s %-43s %s\n", l.sign, p.Prefix, strings.Join(src, ",")); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("run %d, %s %s prefixes: %w", r.ID, tc.Target, l.change, err)
				}
			}
			if limit < l.n {
				fmt.Fprintf(w, "  %s ... %d more (asfence show %d --max-prefixes 0)\n", l.sign, l.n-limit, r.ID)
			}
		}
	}
	for _, f := range sum.Diffs {
		if f.Bytes == 0 {
			continue
		}
		fmt.Fprintln(w)
		lw := &lastByte{w: w}
		if err := rd.diff(ctx, r.ID, f.File, lw); err != nil {
			return fmt.Errorf("run %d, diff of %s: %w", r.ID, f.File, err)
		}
		if lw.last != '\n' {
			fmt.Fprintln(w)
		}
	}
	return nil
}

// lastByte remembers the last byte written through it.
type lastByte struct {
	w    io.Writer
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.last = p[len(p)-1]
	}
	return l.w.Write(p)
}

// writeRunJSON writes the whole run as {"run": ..., "detail": {"change":
// {"targets": [...]}, "output_diffs": [...]}}, the shape show has always
// printed, streaming the lists and diffs as they are read.
func writeRunJSON(ctx context.Context, w io.Writer, rd runReader, r *store.Run, sum *store.ChangeSummary) error {
	bw := bufio.NewWriter(w)
	ew := &errWriter{w: bw}
	raw := func(v any) {
		b, err := json.Marshal(v)
		if err != nil && ew.err == nil {
			ew.err = err
		}
		ew.Write(b)
	}
	io.WriteString(ew, `{"run":`)
	raw(r)
	if sum == nil {
		io.WriteString(ew, `,"detail":null}`+"\n")
		if ew.err != nil {
			return ew.err
		}
		return bw.Flush()
	}
	io.WriteString(ew, `,"detail":{"change":{"targets":[`)
	for i, tc := range sum.Targets {
		if i > 0 {
			io.WriteString(ew, ",")
		}
		io.WriteString(ew, `{"target":`)
		raw(tc.Target)
		fmt.Fprintf(ew, `,"before":%d,"after":%d`, tc.Before, tc.After)
		for _, l := range []struct {
			change string
			n      int
		}{{store.ChangeAdded, tc.Added}, {store.ChangeRemoved, tc.Removed}} {
			fmt.Fprintf(ew, `,%q:[`, l.change)
			n := 0
			if l.n > 0 {
				err := rd.prefixes(ctx, r.ID, store.PrefixQuery{Target: tc.Target, Change: l.change, Limit: l.n}, func(ps []asn.Prefix) error {
					for _, p := range ps {
						if n > 0 {
							io.WriteString(ew, ",")
						}
						n++
						raw(p)
					}
					return ew.err
				})
				if err != nil {
					return fmt.Errorf("run %d, %s %s prefixes: %w", r.ID, tc.Target, l.change, err)
				}
			}
			io.WriteString(ew, "]")
		}
		io.WriteString(ew, `,"added_asns":`)
		raw(tc.AddedASNs)
		io.WriteString(ew, `,"removed_asns":`)
		raw(tc.RemovedASNs)
		io.WriteString(ew, "}")
	}
	io.WriteString(ew, `]},"output_diffs":[`)
	for i, f := range sum.Diffs {
		if i > 0 {
			io.WriteString(ew, ",")
		}
		io.WriteString(ew, `{"file":`)
		raw(f.File)
		io.WriteString(ew, `,"diff":"`)
		jw := &jsonStringWriter{w: ew}
		if err := rd.diff(ctx, r.ID, f.File, jw); err != nil {
			return fmt.Errorf("run %d, diff of %s: %w", r.ID, f.File, err)
		}
		if err := jw.Close(); err != nil {
			return err
		}
		io.WriteString(ew, `"}`)
	}
	io.WriteString(ew, "]}}\n")
	if ew.err != nil {
		return ew.err
	}
	return bw.Flush()
}

// errWriter keeps the first write error and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// jsonStringWriter writes text as the inside of a JSON string; a UTF-8
// sequence split between two writes waits for its end.
type jsonStringWriter struct {
	w       io.Writer
	pending []byte
}

func (j *jsonStringWriter) Write(p []byte) (int, error) {
	buf := append(j.pending, p...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	j.pending = bytes.Clone(buf[cut:])
	if err := j.put(buf[:cut]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what is pending (an incomplete sequence as U+FFFD).
func (j *jsonStringWriter) Close() error {
	err := j.put(j.pending)
	j.pending = nil
	return err
}

func (j *jsonStringWriter) put(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	b, err := json.Marshal(string(p))
	if err != nil {
		return err
	}
	_, err = j.w.Write(b[1 : len(b)-1])
	return err
}

func (a *app) decideCmd(approve bool) *cobra.Command {
	var f clientFlags
	use, short := "reject RUN", "Reject a held change: the applied set stays"
	if approve {
		use, short = "approve RUN", "Approve a held change: apply exactly the held set"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

Through the running daemon's API; when no daemon is running, the decision is
recorded in the state store (an approved set is announced at the next start).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			t, err := f.resolve()
			if err != nil {
				return err
			}
			by := currentUser()
			var r *store.Run
			offline := false
			var unreachable *api.UnreachableError
			if t.client != nil {
				if approve {
					r, err = t.client.Approve(cmd.Context(), id, by)
				} else {
					r, err = t.client.Reject(cmd.Context(), id, by)
				}
			}
			if t.client == nil || errors.As(err, &unreachable) {
				if t.explicit {
					return err
				}
				r, err = decideOffline(t, id, approve, by)
				if err != nil {
					if unreachable != nil && errors.Is(err, store.ErrLocked) {
						return fmt.Errorf("%v, and the daemon holds the state store", unreachable)
					}
					return err
				}
				offline = true
			}
			if err != nil {
				return err
			}
			verb := "rejected: the applied set stays"
			if approve {
				verb = "approved and applied"
				if offline {
					verb = "approved: the daemon announces it at its next start"
				}
			}
			fmt.Fprintf(a.stdout, "run %d %s (+%d -%d prefixes)\n", r.ID, verb, r.Diff.Added, r.Diff.Removed)
			return nil
		},
	}
	f.register(c, false)
	return c
}

// decideOffline records a decision in the store of a stopped daemon.
func decideOffline(t *target, id uint64, approve bool, by string) (*store.Run, error) {
	s, err := t.openStore(false)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	now := time.Now()
	if !approve {
		return s.Reject(id, by+" (offline)", now)
	}
	return s.ApproveStopped(id, by+" (offline)", now)
}

func (a *app) triggerCmd() *cobra.Command {
	var f clientFlags
	var wait bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "trigger",
		Short: "Start a run now on the running daemon (instead of waiting for the schedule)",
		Long: `Start a run now on the running daemon, through its API.

With --wait it waits for the run to finish and prints its outcome; the exit
status is then 1 when the run failed (the announced set stays) or when the
vendor files in output_dir could not be written to match the applied set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := f.apiClient("trigger")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := client.Trigger(ctx, currentUser())
			if err != nil {
				return err
			}
			if !wait {
				fmt.Fprintf(a.stdout, "run %d started\n", r.ID)
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			for r.Outcome == store.Running {
				select {
				case <-ctx.Done():
					return fmt.Errorf("run %d: still running after %s (asfence show %d)", r.ID, timeout, r.ID)
				case <-time.After(200 * time.Millisecond):
				}
				sum, err := client.RunSummary(ctx, r.ID)
				if err != nil {
					return fmt.Errorf("run: %w", err)
				}
				r = sum.Run
			}
			fmt.Fprintf(a.stdout, "run %d %s (+%d -%d prefixes)", r.ID, r.Outcome, r.Diff.Added, r.Diff.Removed)
			if r.Error != "" {
				fmt.Fprintf(a.stdout, ": %s", r.Error)
			}
			fmt.Fprintln(a.stdout)
			if r.Outcome == store.Failed {
				return errRunFailed
			}
			if r.OutputsError != "" {
				// The set is in force, but the files engineers deploy lag it.
				fmt.Fprintf(a.stdout, "vendor files not written (the daemon writes them again at every run): %s\n", r.OutputsError)
				return errOutputsFailed
			}
			return nil
		},
	}
	f.register(c, false)
	c.Flags().BoolVar(&wait, "wait", false, "wait for the run to finish and print its outcome")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: give up after this long")
	return c
}

// errRunFailed is a triggered run that failed: exit status 1, its error
// already printed.
var errRunFailed = errors.New("the run failed")

// errOutputsFailed is a triggered run whose vendor files could not be
// written: exit status 1.
var errOutputsFailed = errors.New("the run's vendor files were not written")
