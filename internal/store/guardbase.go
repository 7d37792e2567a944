package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/asfence/asfence/policy"
)

// GuardBase is an applied set as the guard's window sees it: when it came
// into force and its prefixes per target. The window counts withdrawals
// against the set that was in force at its start, so that runs each under
// the limits cannot add up past them.
type GuardBase struct {
	RunID uint64    `json:"run_id"`
	At    time.Time `json:"at"`
	// Approved: an operator approved it; earlier sets no longer count.
	Approved bool                      `json:"approved,omitempty"`
	Targets  map[string][]netip.Prefix `json:"targets"`
}

// AddGuardBase records the set in that run applied at at, and forgets the
// sets no longer needed for a window that starts at since: those before
// an approved set, and all but the newest of those in force before since.
func (s *Store) AddGuardBase(runID uint64, at time.Time, in *policy.Intent, approved bool, since time.Time) error {
	g := GuardBase{RunID: runID, At: at.UTC(), Approved: approved, Targets: map[string][]netip.Prefix{}}
	for _, t := range in.Targets {
		ps := make([]netip.Prefix, len(t.Prefixes))
		for i, p := range t.Prefixes {
			ps[i] = p.Prefix
		}
		g.Targets[t.Name] = ps
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketGuard)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := guardKey(g.At, seq)
		if err := putJSON(b, key, g); err != nil {
			return err
		}
		// Older entries, newest first: keep the first in force before
		// since, drop everything older than it (or than an approval).
		var drop [][]byte
		keep := !approved
		c := b.Cursor()
		c.Seek(key)
		for k, _ := c.Prev(); k != nil; k, _ = c.Prev() {
			if !keep {
				drop = append(drop, bytes.Clone(k))
				continue
			}
			if !guardKeyTime(k).After(since) {
				keep = false // this one is the base; the older ones are not needed
			}
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// GuardBase returns the set the window starting at since counts against:
// the newest one in force at since, else the oldest recorded after it
// (nil when none is recorded).
func (s *Store) GuardBase(since time.Time) (*GuardBase, error) {
	var data []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGuard)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			data = v
			if !guardKeyTime(k).After(since) {
				break
			}
		}
		data = bytes.Clone(data)
		return nil
	})
	if err != nil || data == nil {
		return nil, err
	}
	var g GuardBase
	if err := getJSON(data, &g); err != nil {
		return nil, &CorruptError{Path: s.path, Err: fmt.Errorf("guard base: %w", err)}
	}
	return &g, nil
}

// guardKey orders the entries by the time they came into force (then by
// insertion), so that finding the base reads keys only.
func guardKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func guardKeyTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
}
