package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/console"
	"github.com/asfence/asfence/internal/store"
)

// consoleBackend is what the review console reads and acts on: the
// daemon's own state, store and decisions (the same ones the API serves).
// A run's change is read from the store a page at a time, never whole.
type consoleBackend struct {
	*Daemon
}

// newConsole builds the review console served on the API's listener.
func newConsole(d *Daemon) (http.Handler, error) {
	return console.New(&consoleBackend{Daemon: d}, console.Options{
		Token: func() string {
			if d.srv == nil {
				return ""
			}
			return d.srv.Token()
		},
		Log:     d.log.WithField("component", "console"),
		Now:     d.opts.Now,
		Version: d.opts.Version,
	})
}

func (b *consoleBackend) Runs(_ context.Context, o store.ListOptions) ([]*store.Run, error) {
	return b.st.Runs(o)
}

// RunSummary reads the run's record only (not its change).
func (b *consoleBackend) RunSummary(_ context.Context, id uint64) (*store.Run, error) {
	return b.st.RunRecord(id)
}

func (b *consoleBackend) RunChanges(_ context.Context, id uint64, q console.ChangeQuery) (*console.Changes, error) {
	out := &console.Changes{}
	switch q.Kind {
	case console.Added, console.Removed:
		change := store.ChangeAdded
		if q.Kind == console.Removed {
			change = store.ChangeRemoved
		}
		total, err := b.st.RunPrefixes(id, store.PrefixQuery{Target: q.Target, Change: change, Offset: q.Offset, Limit: q.Limit}, func(ps []asn.Prefix) error {
			out.Prefixes = append(out.Prefixes, ps...)
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.Total = total
	case console.AddedASNs, console.RemovedASNs:
		_, sum, err := b.st.RunChange(id)
		if err != nil {
			return nil, err
		}
		var tc *store.ChangeTarget
		if sum != nil {
			tc = sum.Target(q.Target)
		}
		if tc == nil {
			return nil, fmt.Errorf("run %d changed no target %q: %w", id, q.Target, store.ErrNotFound)
		}
		list := tc.AddedASNs
		if q.Kind == console.RemovedASNs {
			list = tc.RemovedASNs
		}
		out.Total = len(list)
		out.ASNs = list[min(q.Offset, len(list)):min(q.Offset+q.Limit, len(list))]
	default:
		return nil, fmt.Errorf("change kind %q", q.Kind)
	}
	return out, nil
}

func (b *consoleBackend) RunDiffFiles(_ context.Context, id uint64) ([]store.DiffFile, error) {
	_, sum, err := b.st.RunChange(id)
	if err != nil || sum == nil {
		return nil, err
	}
	return sum.Diffs, nil
}

func (b *consoleBackend) RunDiffLines(_ context.Context, id uint64, file string, offset, limit int) ([]string, int, error) {
	var lines []string
	total, err := b.st.RunDiff(id, file, offset, limit, func(text string) error {
		lines = append(lines, strings.Split(strings.TrimSuffix(text, "\n"), "\n")...)
		return nil
	})
	return lines, total, err
}

func (b *consoleBackend) Applied(context.Context) (*console.Applied, error) {
	b.Daemon.mu.Lock()
	st := b.Daemon.applied
	b.Daemon.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	pol := b.config().PolicyRules
	return &console.Applied{RunID: st.RunID, At: st.At, Intent: st.Intent, Snapshot: st.Snapshot, Policy: &pol}, nil
}

func (b *consoleBackend) Outputs(context.Context) ([]console.Output, error) {
	cfg := b.config()
	dir := cfg.OutputDirectory()
	var out []console.Output
	for _, v := range cfg.Outputs.Vendors {
		o := console.Output{Vendor: v, File: filters.FileName(v)}
		st, err := os.Stat(filepath.Join(dir, o.File))
		switch {
		case errors.Is(err, os.ErrNotExist):
			o.Error = "not written yet (no applied run since it was configured)"
		case err != nil:
			o.Error = err.Error()
		default:
			o.Size, o.ModTime = st.Size(), st.ModTime().UTC()
		}
		out = append(out, o)
	}
	return out, nil
}

// OpenOutput opens a configured vendor file (and nothing else).
func (b *consoleBackend) OpenOutput(_ context.Context, file string) (*os.File, error) {
	cfg := b.config()
	for _, v := range cfg.Outputs.Vendors {
		if filters.FileName(v) == file {
			return os.Open(filepath.Join(cfg.OutputDirectory(), file))
		}
	}
	return nil, fmt.Errorf("vendor file %q: %w", file, store.ErrNotFound)
}
