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
	w, err := Create(path, perm)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		w.Discard()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return w.Stage()
}

// Writer writes the new content of a file to a temporary file next to it
// as the content is made (a large file is never held whole); Stage
// finishes it.
type Writer struct {
	f    *os.File
	path string
	perm os.FileMode
	n    int64
}

// Create starts the new content of path (mode perm).
func Create(path string, perm os.FileMode) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Writer{f: f, path: path, perm: perm}, nil
}

// Write writes to the temporary file.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes written.
func (w *Writer) Size() int64 { return w.n }

// Stage sets the mode, syncs and closes the temporary file: the content is
// staged (see Temp). On an error the temporary file is removed.
func (w *Writer) Stage() (*Temp, error) {
	tmp := w.f.Name()
	werr := w.f.Chmod(w.perm)
	if werr == nil {
		werr = w.f.Sync()
	}
	if cerr := w.f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write %s: %w", w.path, werr)
	}
	return &Temp{path: w.path, tmp: tmp}, nil
}

// Discard removes the temporary file of an unfinished Writer.
func (w *Writer) Discard() {
	w.f.Close()
	os.Remove(w.f.Name())
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
