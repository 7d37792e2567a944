package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

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

// writeOutputs renders the configured vendors and replaces each file that
// changed atomically, keeping the previous version. A file that cannot be
// rendered or written is reported; the others are still written.
func (d *Daemon) writeOutputs(cfg *config.Config, runID uint64, in *policy.Intent) ([]store.Output, []store.OutputDiff) {
	if len(cfg.Outputs.Vendors) == 0 {
		return nil, nil
	}
	dir := OutputDir(cfg)
	var outs []store.Output
	var diffs []store.OutputDiff
	fail := func(o store.Output, err error) {
		o.Error = err.Error()
		outs = append(outs, o)
		d.m.OutputError()
		d.log.WithFields(logrus.Fields{"run": runID, "vendor": o.Vendor}).WithError(err).Error("output not written")
	}
	if err := os.MkdirAll(filepath.Join(dir, "previous"), 0o755); err != nil {
		for _, v := range cfg.Outputs.Vendors {
			fail(store.Output{Vendor: v}, fmt.Errorf("output dir: %w", err))
		}
		return outs, diffs
	}
	for _, r := range renderVendors(in, cfg, d.opts.Version) {
		o := store.Output{Vendor: r.vendor, File: r.file}
		if r.err != nil {
			fail(o, r.err)
			continue
		}
		path := filepath.Join(dir, r.file)
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fail(o, err)
			continue
		}
		if err == nil && bytes.Equal(old, r.data) {
			outs = append(outs, o)
			continue
		}
		if err == nil {
			if err := keepPrevious(dir, r.file); err != nil {
				fail(o, err)
				continue
			}
		}
		if err := atomicfile.WriteFile(path, r.data, 0o644); err != nil {
			fail(o, err)
			continue
		}
		o.Changed = true
		outs = append(outs, o)
		diffs = append(diffs, store.OutputDiff{File: r.file, Diff: unifiedDiff("a/"+r.file, "b/"+r.file, old, r.data)})
	}
	return outs, diffs
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
