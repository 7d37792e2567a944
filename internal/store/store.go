// Package store is the daemon's state: the last applied Snapshot and
// Intent, every run with its diff, and the changes held for approval. It is
// one bbolt file in the state directory; every write is one fsynced
// transaction, so a crash leaves either the old or the new state.
package store

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// FileName is the store file inside the state directory.
const FileName = "asfence.db"

// ErrNotFound: no run (or held change) with that id.
var ErrNotFound = errors.New("not found")

// ErrLocked: another process (the running daemon) has the store open.
var ErrLocked = errors.New("state store is in use by another process (is the daemon running?)")

// ErrNoStore: the state directory holds no store yet.
var ErrNoStore = errors.New("no state store")

// CorruptError is a store file that cannot be read. It is never
// overwritten: the operator decides what to do with it.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state store %s is corrupt: %v (it was left as it is: move it away to start with an empty state)", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Buckets and keys.
var (
	bucketMeta    = []byte("meta")
	bucketRuns    = []byte("runs")
	bucketDetails = []byte("details")
	bucketHeld    = []byte("held")
	bucketState   = []byte("state")
	// bucketGuard holds the applied sets the guard's window counts
	// against (guardbase.go).
	bucketGuard = []byte("guard")

	keySchema  = []byte("schema")
	keyApplied = []byte("applied")
	keyPending = []byte("pending")
)

const schemaVersion = "1"

// Store is an open state store.
type Store struct {
	db   *bolt.DB
	path string
}

// Options for Open.
type Options struct {
	// ReadOnly opens the store for reading (history, show) while no daemon
	// holds it.
	ReadOnly bool
	// Timeout waits this long for another process's lock (0: 1 s).
	Timeout time.Duration
}

// Open opens (or, read-write, creates) the store in dir.
func Open(dir string, o Options) (s *Store, err error) {
	path := filepath.Join(dir, FileName)
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w in %s", ErrNoStore, dir)
			}
			return nil, fmt.Errorf("state store: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	// bbolt takes an empty file for a new one and initialises it. A store
	// that was ever opened is never empty: an empty file is a damaged store
	// (truncated, or emptied by hand), and starting from it would apply
	// the next run with nothing to guard it against. A new install is a
	// state directory without the file.
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, &CorruptError{Path: path, Err: errors.New("the file is empty (0 bytes), which a store that was written never is; it is not taken for a new install")}
	}
	// A damaged file can make bbolt panic while it maps pages.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &CorruptError{Path: path, Err: fmt.Errorf("%v", r)}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, ReadOnly: o.ReadOnly})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, &CorruptError{Path: path, Err: err}
		}
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	s = &Store{db: db, path: path}
	if err := s.check(); err != nil {
		db.Close()
		return nil, err
	}
	if !o.ReadOnly {
		if err := s.init(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// Path is the store file.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state store %s: close: %w", s.path, err)
	}
	return nil
}

// check walks every page once at open, so that a damaged file is reported
// at start-up rather than in the middle of a run.
func (s *Store) check() error {
	var errs []error
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		// A file cut short (a copy or a disk that lost its end) still has
		// valid meta pages that point past its end: reading those pages
		// would fault.
		if tx.Size() > fi.Size() {
			return fmt.Errorf("the file is truncated: %d bytes, its pages reach %d", fi.Size(), tx.Size())
		}
		for err := range tx.Check() {
			if len(errs) < 5 {
				errs = append(errs, err)
			}
		}
		if m := tx.Bucket(bucketMeta); m != nil {
			if v := m.Get(keySchema); v != nil && string(v) != schemaVersion {
				return fmt.Errorf("schema version %q, this asfence reads %q", v, schemaVersion)
			}
		}
		return nil
	})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return err
		}
		return &CorruptError{Path: s.path, Err: err}
	}
	if len(errs) > 0 {
		return &CorruptError{Path: s.path, Err: errors.Join(errs...)}
	}
	return nil
}

func (s *Store) init() error {
	return s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketRuns, bucketDetails, bucketChanges, bucketHeld, bucketState, bucketGuard} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if m.Get(keySchema) == nil {
			return m.Put(keySchema, []byte(schemaVersion))
		}
		return nil
	})
}

// view and update run a transaction; a panic inside bbolt (a damaged page)
// becomes a CorruptError instead of killing the daemon.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: s.path, Err: fmt.Errorf("%v", r)}
		}
	}()
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: s.path, Err: fmt.Errorf("%v", r)}
		}
	}()
	if err := s.db.Update(fn); err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("state store %s: %w", s.path, err)
	}
	return nil
}

func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %q missing", name)
	}
	return b, nil
}

func idKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// putJSON stores v as gzipped JSON: snapshots and diffs compress about 10x.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return b.Put(key, buf.Bytes())
}

func getJSON(data []byte, v any) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// State is an Intent in force (applied) or being applied (pending), with
// the Snapshot it came from.
type State struct {
	RunID    uint64         `json:"run_id"`
	At       time.Time      `json:"at"`
	Snapshot *asn.Snapshot  `json:"-"`
	Intent   *policy.Intent `json:"-"`
}

type stateRecord struct {
	RunID    uint64          `json:"run_id"`
	At       time.Time       `json:"at"`
	Snapshot json.RawMessage `json:"snapshot"`
	Intent   *policy.Intent  `json:"intent"`
}

func putState(b *bolt.Bucket, key []byte, st *State) error {
	var snap bytes.Buffer
	if err := st.Snapshot.Encode(&snap); err != nil {
		return err
	}
	return putJSON(b, key, stateRecord{RunID: st.RunID, At: st.At.UTC(), Snapshot: snap.Bytes(), Intent: st.Intent})
}

func (s *Store) decodeState(what string, data []byte) (*State, error) {
	var r stateRecord
	if err := getJSON(data, &r); err != nil {
		return nil, &CorruptError{Path: s.path, Err: fmt.Errorf("%s state: %w", what, err)}
	}
	snap, err := asn.DecodeSnapshot(what+" snapshot", r.Snapshot)
	if err != nil {
		return nil, &CorruptError{Path: s.path, Err: err}
	}
	if r.Intent == nil {
		return nil, &CorruptError{Path: s.path, Err: fmt.Errorf("%s state: no intent", what)}
	}
	return &State{RunID: r.RunID, At: r.At, Snapshot: snap, Intent: r.Intent}, nil
}

func (s *Store) getState(key []byte) (*State, error) {
	var data []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		if b != nil {
			data = bytes.Clone(b.Get(key))
		}
		return nil
	})
	if err != nil || data == nil {
		return nil, err
	}
	return s.decodeState(string(key), data)
}

// Applied returns the Intent in force, or nil before the first applied run.
func (s *Store) Applied() (*State, error) { return s.getState(keyApplied) }

// Pending returns an Intent whose apply began but was not committed (the
// daemon stopped in between), or nil.
func (s *Store) Pending() (*State, error) { return s.getState(keyPending) }
