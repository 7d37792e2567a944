package daemon

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/atomicfile"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// previousVersions is how many earlier versions of each vendor file are
// kept in output_dir/previous.
const previousVersions = 10

// rendered is one vendor file.
type rendered struct {
	vendor, file string
	data         []byte
	err          error
}

// writeOutputs renders the configured vendors for in and replaces the
// files that changed, keeping their previous versions. The files are one
// set: every file is rendered and written to a temporary file first, and
// only when all of them are ready are they renamed into place, so a
// failure (a full disk, a file in the way) leaves every file as it was.
// The error says why the files do not match in; they are then written
// again by the next run (see refreshOutputs).
func (d *Daemon) writeOutputs(cfg *config.Config, runID uint64, in *policy.Intent) ([]store.Output, []store.OutputDiff, error) {
	outs, diffs, err := d.writeOutputSet(cfg, in)
	if err != nil {
		d.m.OutputError()
		d.log.WithField("run", runID).WithError(err).Error("vendor files not written: they are written again by the next run")
	}
	d.outputsDone(err)
	return outs, diffs, err
}

// outputsDone records whether the vendor files match the applied set.
func (d *Daemon) outputsDone(err error) {
	d.mu.Lock()
	d.outputsChecked = err == nil
	d.outputsErr = ""
	if err != nil {
		d.outputsErr = err.Error()
	}
	d.mu.Unlock()
	d.m.OutputsCurrent(err == nil)
	d.m.Ready(d.Ready())
}

// outputsStale makes the next run write the vendor files again (the
// config, and with it the vendors or their options, changed).
func (d *Daemon) outputsStale() {
	d.mu.Lock()
	d.outputsChecked = false
	d.mu.Unlock()
}

// refreshOutputs writes the vendor files for the applied set when they may
// not match it (a write failed, the config was reloaded), for a run that
// applies no new set, and records the result in r (and the files' diffs
// in detail, if any).
func (d *Daemon) refreshOutputs(cfg *config.Config, r *store.Run, detail *store.Detail) {
	d.mu.Lock()
	applied, checked := d.applied, d.outputsChecked
	d.mu.Unlock()
	if checked || applied == nil {
		return
	}
	outs, diffs, err := d.writeOutputs(cfg, r.ID, applied.Intent)
	r.Outputs = outs
	if err != nil {
		r.OutputsError = err.Error()
	}
	if detail != nil {
		detail.OutputDiffs = diffs
	}
}

// staged is a vendor file, once ready written to a temporary file next to
// it, not yet in place.
type staged struct {
	out      store.Output
	path     string
	tmp      *atomicfile.Temp
	old, new []byte
	exists   bool
}

func (d *Daemon) writeOutputSet(cfg *config.Config, in *policy.Intent) (outs []store.Output, diffs []store.OutputDiff, err error) {
	if len(cfg.Outputs.Vendors) == 0 {
		return nil, nil, nil
	}
	dir := cfg.OutputDirectory()
	// fail marks every vendor not written, the one at fault with its error.
	fail := func(vendor string, err error) ([]store.Output, []store.OutputDiff, error) {
		outs := make([]store.Output, 0, len(cfg.Outputs.Vendors))
		for _, v := range cfg.Outputs.Vendors {
			o := store.Output{Vendor: v, File: filters.FileName(v), Error: "not written: " + err.Error()}
			if v == vendor || vendor == "" {
				o.Error = err.Error()
			}
			outs = append(outs, o)
		}
		return outs, nil, fmt.Errorf("%s: %w", cmp.Or(vendor, dir), err)
	}
	var files []*staged
	defer func() {
		for _, f := range files {
			f.tmp.Discard() // after the rename this does nothing
		}
	}()
	for _, r := range renderVendors(in, cfg, d.opts.Version) {
		if r.err != nil {
			return fail(r.vendor, r.err)
		}
		files = append(files, &staged{out: store.Output{Vendor: r.vendor, File: r.file}, path: filepath.Join(dir, r.file), new: r.data})
	}
	if err := os.MkdirAll(filepath.Join(dir, "previous"), 0o755); err != nil {
		return fail("", fmt.Errorf("output dir: %w", err))
	}
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		switch {
		case err == nil:
			f.old, f.exists = old, true
		case !errors.Is(err, os.ErrNotExist):
			return fail(f.out.Vendor, err)
		}
		if f.exists && bytes.Equal(f.old, f.new) {
			continue
		}
		if f.tmp, err = atomicfile.Stage(f.path, f.new, 0o644); err != nil {
			return fail(f.out.Vendor, err)
		}
	}
	for _, f := range files {
		if f.tmp != nil && f.exists {
			if err := keepPrevious(dir, filepath.Base(f.path)); err != nil {
				return fail(f.out.Vendor, err)
			}
		}
	}
	// Every file is ready: the renames cannot run out of space (the
	// temporary files hold it) and they replace each file at once.
	for _, f := range files {
		if f.tmp != nil {
			if err := f.tmp.Rename(); err != nil {
				return fail(f.out.Vendor, err)
			}
			f.out.Changed = true
			diffs = append(diffs, store.OutputDiff{File: f.out.File, Diff: unifiedDiff("a/"+f.out.File, "b/"+f.out.File, f.old, f.new)})
		}
		outs = append(outs, f.out)
	}
	atomicfile.SyncDir(dir)
	return outs, diffs, nil
}

// keepPrevious hard-links the current file into previous/ under its
// modification time, then trims the oldest versions.
func keepPrevious(dir, file string) error {
	path := filepath.Join(dir, file)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	prev := filepath.Join(dir, "previous")
	dst := filepath.Join(prev, file+"."+st.ModTime().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Link(path, dst); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keep previous version: %w", err)
	}
	ents, err := os.ReadDir(prev)
	if err != nil {
		return err
	}
	var versions []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), file+".") {
			versions = append(versions, e.Name())
		}
	}
	slices.Sort(versions) // the timestamp suffix sorts in time order
	for len(versions) > previousVersions {
		if err := os.Remove(filepath.Join(prev, versions[0])); err != nil {
			return err
		}
		versions = versions[1:]
	}
	return nil
}
