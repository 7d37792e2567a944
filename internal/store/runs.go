package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
	"github.com/asfence/asfence/report"
)

// Run outcomes.
const (
	Running   = "running"
	Applied   = "applied"
	Held      = "held"
	Unchanged = "unchanged"
	Failed    = "failed"
)

// Decisions on a held run.
const (
	Approved = "approved"
	Rejected = "rejected"
	// Superseded: a later run was held or applied; this held change can no
	// longer be approved.
	Superseded = "superseded"
)

// Run is one pass of resolve -> policy -> guard -> apply, as history shows it.
type Run struct {
	ID      uint64    `json:"id"`
	Trigger string    `json:"trigger"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome string    `json:"outcome"`
	// Error says why the run failed.
	Error string `json:"error,omitempty"`
	// SnapshotTime is when the resolved snapshot was made.
	SnapshotTime time.Time      `json:"snapshot_time,omitzero"`
	Sources      []SourceStatus `json:"sources"`
	// Degraded: some sources failed; only what the others said was merged.
	Degraded bool        `json:"degraded,omitempty"`
	Carried  asn.Carried `json:"carried_over"`
	// Targets counts the run's resulting Intent.
	Targets []TargetCount `json:"targets"`
	Diff    DiffSummary   `json:"diff"`
	// Guard says why the run was held.
	Guard    []string  `json:"guard,omitempty"`
	Decision *Decision `json:"decision,omitempty"`
	Outputs  []Output  `json:"outputs,omitempty"`
	// OutputsError says why the vendor files in output_dir do not match
	// the applied set after this run (none was replaced: they are all
	// from an earlier applied set, or missing). Every later run, a reload
	// and a restart write them again until they do.
	OutputsError string `json:"outputs_error,omitempty"`
	// BGP is what the speaker changed (nil: no speaker). Records written
	// before the per-family counts have the totals only.
	BGP *bgp.Counts `json:"bgp,omitempty"`
}

// SourceStatus is one source's result in a run.
type SourceStatus struct {
	Source string `json:"source"`
	Target string `json:"target,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// TargetCount counts one target's Intent.
type TargetCount struct {
	Target string `json:"target"`
	IPv4   int    `json:"ipv4"`
	IPv6   int    `json:"ipv6"`
	ASNs   int    `json:"asns"`
}

// DiffSummary counts the change against the Intent in force.
type DiffSummary struct {
	Added       int          `json:"added"`
	Removed     int          `json:"removed"`
	AddedASNs   int          `json:"added_asns"`
	RemovedASNs int          `json:"removed_asns"`
	Targets     []TargetDiff `json:"targets,omitempty"`
}

// TargetDiff counts one target's change.
type TargetDiff struct {
	Target      string `json:"target"`
	Before      int    `json:"before"`
	After       int    `json:"after"`
	Added       int    `json:"added"`
	Removed     int    `json:"removed"`
	AddedASNs   int    `json:"added_asns"`
	RemovedASNs int    `json:"removed_asns"`
}

// Decision records who decided a held run, and when.
type Decision struct {
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"`
	// Run that superseded this one.
	SupersededBy uint64 `json:"superseded_by,omitempty"`
}

// Output is one vendor file written after an applied run.
type Output struct {
	Vendor  string `json:"vendor"`
	File    string `json:"file"`
	Changed bool   `json:"changed"`
	Error   string `json:"error,omitempty"`
}

// Detail is the bulky part of a run, kept apart from the history list and
// stored in chunks (see RunChange, RunPrefixes, RunDiff). Written with a
// run, a Change without targets keeps the change already recorded, and nil
// OutputDiffs keep the recorded diffs.
type Detail struct {
	// Change is the full diff against the Intent in force, with evidence.
	Change policy.Change `json:"change"`
	// OutputDiffs are unified diffs of the vendor files written.
	OutputDiffs []OutputDiff `json:"output_diffs,omitempty"`
	// Report sums up the run's snapshot and Intent (asfence report).
	Report *report.Report `json:"report,omitempty"`
}

// OutputDiff is the diff of one written file against its previous version.
type OutputDiff struct {
	File string `json:"file"`
	Diff string `json:"diff"`
}

// Summarize counts a Change.
func Summarize(c policy.Change) DiffSummary {
	var d DiffSummary
	for _, t := range c.Targets {
		td := TargetDiff{Target: t.Target, Before: t.Before, After: t.After, Added: len(t.Added), Removed: len(t.Removed),
			AddedASNs: len(t.AddedASNs), RemovedASNs: len(t.RemovedASNs)}
		d.Added += td.Added
		d.Removed += td.Removed
		d.AddedASNs += td.AddedASNs
		d.RemovedASNs += td.RemovedASNs
		d.Targets = append(d.Targets, td)
	}
	return d
}

// Count counts an Intent per target.
func Count(in *policy.Intent) []TargetCount {
	if in == nil {
		return nil
	}
	var out []TargetCount
	for i := range in.Targets {
		t := &in.Targets[i]
		out = append(out, TargetCount{Target: t.Name, IPv4: len(t.Exact(prefixset.IPv4)), IPv6: len(t.Exact(prefixset.IPv6)), ASNs: len(t.ASNs)})
	}
	return out
}

func putRun(tx *bolt.Tx, r *Run, d *Detail) error {
	runs, err := bucket(tx, bucketRuns)
	if err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run %d: %w", r.ID, err)
	}
	if err := runs.Put(idKey(r.ID), data); err != nil {
		return err
	}
	if d == nil {
		return nil
	}
	return putDetail(tx, r.ID, d)
}

func (s *Store) decodeRun(k, v []byte) (*Run, error) {
	var r Run
	if err := json.Unmarshal(v, &r); err != nil || len(k) != 8 || r.ID != binary.BigEndian.Uint64(k) {
		return nil, &CorruptError{Path: s.path, Err: fmt.Errorf("run record %x: undecodable", k)}
	}
	return &r, nil
}

// BeginRun records a new run as running and gives it its id.
func (s *Store) BeginRun(trigger string, start time.Time) (*Run, error) {
	r := &Run{Trigger: trigger, Start: start.UTC(), Outcome: Running}
	err := s.update(func(tx *bolt.Tx) error {
		runs, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		id, err := runs.NextSequence()
		if err != nil {
			return err
		}
		r.ID = id
		return putRun(tx, r, nil)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// PutRun stores a run record (and its detail, when not nil) as it is.
func (s *Store) PutRun(r *Run, d *Detail) error {
	return s.update(func(tx *bolt.Tx) error { return putRun(tx, r, d) })
}

// Hold stores a held run with the state it would apply. Earlier held runs
// still waiting for a decision are superseded: only the latest held change
// can be approved, since it is the one computed against the state in force.
func (s *Store) Hold(r *Run, d *Detail, st *State) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := s.supersede(tx, r.ID, r.End); err != nil {
			return err
		}
		held, err := bucket(tx, bucketHeld)
		if err != nil {
			return err
		}
		if err := putState(held, idKey(r.ID), st); err != nil {
			return err
		}
		return putRun(tx, r, d)
	})
}

// supersede marks every held run still waiting (except keep) superseded by
// keep, and drops its held state.
func (s *Store) supersede(tx *bolt.Tx, keep uint64, at time.Time) error {
	held, err := bucket(tx, bucketHeld)
	if err != nil {
		return err
	}
	runs, err := bucket(tx, bucketRuns)
	if err != nil {
		return err
	}
	var ids []uint64
	if err := held.ForEach(func(k, _ []byte) error {
		if id := binary.BigEndian.Uint64(k); id != keep {
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if err := held.Delete(idKey(id)); err != nil {
			return err
		}
		v := runs.Get(idKey(id))
		if v == nil {
			continue
		}
		r, err := s.decodeRun(idKey(id), v)
		if err != nil {
			return err
		}
		r.Decision = &Decision{Action: Superseded, At: at.UTC(), SupersededBy: keep}
		if err := putRun(tx, r, nil); err != nil {
			return err
		}
	}
	return nil
}

// BeginApply records the state about to be applied, before the speaker
// changes anything: if the daemon dies half-way, the next start announces
// this state (the one the peers were moving to).
func (s *Store) BeginApply(r *Run, d *Detail, st *State) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketState)
		if err != nil {
			return err
		}
		if err := putState(b, keyPending, st); err != nil {
			return err
		}
		return putRun(tx, r, d)
	})
}

// CommitApply makes the pending state the applied one and stores the run
// (applied, or a held run now approved) and its detail when d is not nil.
// Held runs still waiting are superseded, except r itself whose held state
// is dropped.
func (s *Store) CommitApply(r *Run, d *Detail) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketState)
		if err != nil {
			return err
		}
		p := b.Get(keyPending)
		if p == nil {
			return fmt.Errorf("run %d: nothing pending to commit", r.ID)
		}
		if err := b.Put(keyApplied, bytes.Clone(p)); err != nil {
			return err
		}
		if err := b.Delete(keyPending); err != nil {
			return err
		}
		if err := s.supersede(tx, r.ID, r.End); err != nil {
			return err
		}
		held, err := bucket(tx, bucketHeld)
		if err != nil {
			return err
		}
		if err := held.Delete(idKey(r.ID)); err != nil {
			return err
		}
		return putRun(tx, r, d)
	})
}

// AbortApply drops the pending state and stores the run (failed, or a held
// run still waiting).
func (s *Store) AbortApply(r *Run) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketState)
		if err != nil {
			return err
		}
		if err := b.Delete(keyPending); err != nil {
			return err
		}
		return putRun(tx, r, nil)
	})
}

// Reject records the rejection of a held run and drops its held state.
func (s *Store) Reject(id uint64, by string, at time.Time) (*Run, error) {
	var out *Run
	err := s.update(func(tx *bolt.Tx) error {
		r, err := s.heldRun(tx, id)
		if err != nil {
			return err
		}
		held, _ := bucket(tx, bucketHeld)
		if err := held.Delete(idKey(id)); err != nil {
			return err
		}
		r.Decision = &Decision{Action: Rejected, At: at.UTC(), By: by}
		out = r
		return putRun(tx, r, nil)
	})
	return out, err
}

// ApproveStopped approves a held run while no daemon runs: its set becomes
// the applied one through the same two steps as a daemon's apply, and the
// daemon announces it at its next start.
func (s *Store) ApproveStopped(id uint64, by string, at time.Time) (*Run, error) {
	r, st, err := s.Held(id)
	if err != nil {
		return nil, err
	}
	r.Decision = &Decision{Action: Approved, At: at.UTC(), By: by}
	if err := s.BeginApply(r, nil, st); err != nil {
		return nil, err
	}
	if err := s.CommitApply(r, nil); err != nil {
		return nil, err
	}
	// The approved set is guard.window's base from now on (a failure
	// only keeps the window stricter).
	_ = s.AddGuardBase(r.ID, at, st.Intent, true, at)
	return r, nil
}

// NotHeldError: the run exists but has no change waiting for a decision.
type NotHeldError struct{ Run *Run }

func (e *NotHeldError) Error() string {
	if e.Run.Decision != nil {
		return fmt.Sprintf("run %d was held and is already %s", e.Run.ID, e.Run.Decision.Action)
	}
	return fmt.Sprintf("run %d is %s, not held", e.Run.ID, e.Run.Outcome)
}

func (s *Store) heldRun(tx *bolt.Tx, id uint64) (*Run, error) {
	runs, err := bucket(tx, bucketRuns)
	if err != nil {
		return nil, err
	}
	v := runs.Get(idKey(id))
	if v == nil {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	r, err := s.decodeRun(idKey(id), v)
	if err != nil {
		return nil, err
	}
	held, err := bucket(tx, bucketHeld)
	if err != nil {
		return nil, err
	}
	if r.Outcome != Held || r.Decision != nil || held.Get(idKey(id)) == nil {
		return nil, &NotHeldError{Run: r}
	}
	return r, nil
}

// Held returns a run waiting for a decision and the state it would apply.
func (s *Store) Held(id uint64) (*Run, *State, error) {
	var r *Run
	var data []byte
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if r, err = s.heldRun(tx, id); err != nil {
			return err
		}
		held, _ := bucket(tx, bucketHeld)
		data = bytes.Clone(held.Get(idKey(id)))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	st, err := s.decodeState("held", data)
	if err != nil {
		return nil, nil, err
	}
	return r, st, nil
}

// Waiting lists the held runs waiting for a decision, oldest first.
func (s *Store) Waiting() ([]*Run, error) {
	var out []*Run
	err := s.view(func(tx *bolt.Tx) error {
		held := tx.Bucket(bucketHeld)
		runs := tx.Bucket(bucketRuns)
		if held == nil || runs == nil {
			return nil
		}
		return held.ForEach(func(k, _ []byte) error {
			if v := runs.Get(k); v != nil {
				r, err := s.decodeRun(k, v)
				if err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// Interrupted marks runs left "running" by a daemon that stopped without
// finishing them as failed, and returns them.
func (s *Store) Interrupted(now time.Time) ([]*Run, error) {
	var out []*Run
	err := s.update(func(tx *bolt.Tx) error {
		runs, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		c := runs.Cursor()
		// Runs are written in id order: only the newest few can be open.
		n := 0
		for k, v := c.Last(); k != nil && n < 16; k, v = c.Prev() {
			n++
			r, err := s.decodeRun(k, v)
			if err != nil {
				return err
			}
			if r.Outcome == Running {
				out = append(out, r)
			}
		}
		for _, r := range out {
			r.Outcome = Failed
			r.Error = "interrupted: the daemon stopped during this run"
			r.End = now.UTC()
			if err := putRun(tx, r, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// ListOptions select runs for Runs.
type ListOptions struct {
	// Limit returns at most this many (0: 50).
	Limit int
	// Before returns runs with a smaller id (paging; 0: from the newest).
	Before uint64
	// Outcome keeps only runs with this outcome.
	Outcome string
	// Trigger keeps only runs with this trigger.
	Trigger string
	// Since and Until keep only runs started in [Since, Until) (zero: no
	// bound).
	Since, Until time.Time
}

// match reports whether r passes the filters of o.
func (o ListOptions) match(r *Run) bool {
	return (o.Outcome == "" || r.Outcome == o.Outcome) && (o.Trigger == "" || r.Trigger == o.Trigger) &&
		(o.Until.IsZero() || r.Start.Before(o.Until))
}

// Runs lists runs, newest first.
func (s *Store) Runs(o ListOptions) ([]*Run, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	var out []*Run
	err := s.view(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if runs == nil {
			return nil
		}
		c := runs.Cursor()
		var k, v []byte
		if o.Before > 0 {
			k, v = c.Seek(idKey(o.Before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= o.Before {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < o.Limit; k, v = c.Prev() {
			r, err := s.decodeRun(k, v)
			if err != nil {
				return err
			}
			// Runs are numbered in start order: older ones cannot match.
			if !o.Since.IsZero() && r.Start.Before(o.Since) {
				break
			}
			if o.match(r) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// Retention bounds the history.
type Retention struct {
	// Runs kept (0: 1000).
	Runs int
	// MaxAge drops older runs (0: by count only).
	MaxAge time.Duration
}

// DefaultRetentionRuns is the history length when none is configured.
const DefaultRetentionRuns = 1000

// Prune deletes the oldest runs beyond the retention. The run whose state
// is applied, runs waiting for a decision and running runs are kept.
func (s *Store) Prune(ret Retention, now time.Time) (int, error) {
	if ret.Runs <= 0 {
		ret.Runs = DefaultRetentionRuns
	}
	deleted := 0
	err := s.update(func(tx *bolt.Tx) error {
		runs, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		held, err := bucket(tx, bucketHeld)
		if err != nil {
			return err
		}
		keep := map[uint64]bool{}
		if st := tx.Bucket(bucketState); st != nil {
			for _, key := range [][]byte{keyApplied, keyPending} {
				if v := st.Get(key); v != nil {
					var rec struct {
						RunID uint64 `json:"run_id"`
					}
					if err := getJSON(v, &rec); err == nil {
						keep[rec.RunID] = true
					}
				}
			}
		}
		total := runs.Stats().KeyN
		var drop [][]byte
		c := runs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id := binary.BigEndian.Uint64(k)
			if keep[id] || held.Get(k) != nil {
				continue
			}
			over := total-len(drop) > ret.Runs
			old := false
			if ret.MaxAge > 0 {
				r, err := s.decodeRun(k, v)
				if err != nil {
					return err
				}
				if r.Outcome == Running {
					continue
				}
				old = r.Start.Before(now.Add(-ret.MaxAge))
			}
			if !over && !old {
				if ret.MaxAge == 0 {
					break
				}
				continue
			}
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := runs.Delete(k); err != nil {
				return err
			}
			if err := deleteDetail(tx, k); err != nil {
				return err
			}
		}
		deleted = len(drop)
		return nil
	})
	return deleted, err
}
