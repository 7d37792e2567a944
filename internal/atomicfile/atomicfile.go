// Package atomicfile replaces files so that readers see the old content or
// the new, never a partial file, also across a crash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data (mode perm): it writes a temporary file
// in the same directory, syncs it, renames it over path and syncs the
// directory so that the rename is durable.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	t, err := Stage(path, data, perm)
	if err != nil {
		return err
	}
	defer t.Discard()
	if err := t.Rename(); err != nil {
		return err
	}
	SyncDir(filepath.Dir(path))
	return nil
}

// Temp is the new content of a file, written and synced to a temporary
// file next to it, not yet in place. Staging every file of a set before
// renaming any makes the set all-or-nothing against a full disk: the
// renames need no space.
type Temp struct {
	path, tmp string
}

// Stage writes data (mode perm) to a temporary file in path's directory
// and syncs it; Rename puts it in place, Discard removes it.
func Stage(path string, data []byte, perm os.FileMode) (*Temp, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	werr := func() error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := f.Chmod(perm); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write %s: %w", path, werr)
	}
	return &Temp{path: path, tmp: tmp}, nil
}

// Rename replaces the file with the staged content. SyncDir afterwards
// makes the rename durable.
func (t *Temp) Rename() error {
	if err := os.Rename(t.tmp, t.path); err != nil {
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	t.tmp = ""
	return nil
}

// Discard removes the temporary file if it was not renamed; it may be
// called on a nil Temp.
func (t *Temp) Discard() {
	if t != nil && t.tmp != "" {
		os.Remove(t.tmp)
		t.tmp = ""
	}
}

// SyncDir makes renames in dir durable (not every filesystem syncs
// directories; an error is ignored).
func SyncDir(dir string) {
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync()
		df.Close()
	}
}
