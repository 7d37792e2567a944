package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/console"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// consoleBackend is what the review console reads and acts on: the
// daemon's own state, store and decisions (the same ones the API serves).
type consoleBackend struct {
	*Daemon

	// The store keeps a run's change and diffs as one record: the last one
	// read is kept decoded so that paging through it, and the several lists
	// of one run page, decode it once.
	mu     sync.Mutex
	key    string
	detail *store.Detail
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
	rs, err := b.st.Runs(store.ListOptions{Before: id + 1, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || rs[0].ID != id {
		return nil, fmt.Errorf("run %d: %w", id, store.ErrNotFound)
	}
	return rs[0], nil
}

// runDetail is the run's change and diffs, decoded once per version of
// the record (an approval adds the diffs).
func (b *consoleBackend) runDetail(id uint64) (*store.Detail, error) {
	r, err := b.RunSummary(context.Background(), id)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d/%s", id, r.Outcome)
	if r.Decision != nil {
		key += "/" + r.Decision.Action
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key == key {
		return b.detail, nil
	}
	_, d, err := b.st.Run(id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		d = &store.Detail{}
	}
	b.key, b.detail = key, d
	return d, nil
}

func (b *consoleBackend) RunChanges(_ context.Context, id uint64, q console.ChangeQuery) (*console.Changes, error) {
	d, err := b.runDetail(id)
	if err != nil {
		return nil, err
	}
	var tc *policy.TargetChange
	for i := range d.Change.Targets {
		if d.Change.Targets[i].Target == q.Target {
			tc = &d.Change.Targets[i]
		}
	}
	if tc == nil {
		return nil, fmt.Errorf("run %d, target %q: %w", id, q.Target, store.ErrNotFound)
	}
	out := &console.Changes{}
	switch q.Kind {
	case console.Added, console.Removed:
		list := tc.Added
		if q.Kind == console.Removed {
			list = tc.Removed
		}
		out.Total = len(list)
		out.Prefixes = list[min(q.Offset, len(list)):min(q.Offset+q.Limit, len(list))]
	case console.AddedASNs, console.RemovedASNs:
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

func (b *consoleBackend) RunDiffs(_ context.Context, id uint64) ([]store.OutputDiff, error) {
	d, err := b.runDetail(id)
	if err != nil {
		return nil, err
	}
	return d.OutputDiffs, nil
}

func (b *consoleBackend) Applied(context.Context) (*console.Applied, error) {
	b.Daemon.mu.Lock()
	st := b.Daemon.applied
	b.Daemon.mu.Unlock()
	if st == nil {
		return nil, nil
	}
	return &console.Applied{RunID: st.RunID, At: st.At, Intent: st.Intent, Snapshot: st.Snapshot}, nil
}

func (b *consoleBackend) Outputs(context.Context) ([]console.Output, error) {
	cfg := b.config()
	dir := OutputDir(cfg)
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
			return os.Open(filepath.Join(OutputDir(cfg), file))
		}
	}
	return nil, fmt.Errorf("vendor file %q: %w", file, store.ErrNotFound)
}
