package store

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/report"
)

// A run's change and the diffs of the vendor files it wrote are kept in
// chunks, so that a reviewer reads the counts, one page of prefixes or one
// file's diff without decoding the rest: a change of 2M prefixes is about
// a gigabyte of JSON in memory.
//
// Layout: bucket "changes" holds one bucket per run (its id), which holds
//
//	"c": the change: "index" (gzipped JSON changeIndex: per target the
//	     counts and the ASNs added and removed), "gen", and the prefix lists
//	     in chunks of prefixesPerChunk: 'p' target(2) kind(1) chunk(4)
//	     → gzipped JSON []asn.Prefix
//	"d": the vendor-file diffs: "index" (gzipped JSON diffIndex), "gen",
//	     and each file's text in chunks of diffLinesPerChunk lines:
//	     'l' file(2) chunk(4) → gzipped text
//	"report": the run's report, gzipped JSON (report.Report)
//
// A reader that pages across transactions checks "gen" at every chunk: a
// change rewritten in between (an approval adds the diffs) is reported,
// never mixed. Runs recorded by earlier versions keep their whole Detail
// in the "details" bucket and are read whole.
var (
	bucketChanges = []byte("changes")
	subChange     = []byte("c")
	subDiffs      = []byte("d")
	keyIndex      = []byte("index")
	keyGen        = []byte("gen")
	keyReport     = []byte("report")
)

// Chunk sizes: a page of a list decodes at most two chunks.
const (
	prefixesPerChunk  = 256
	diffLinesPerChunk = 1000
)

// Kinds of a prefix list in a change.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
)

// ChangeSummary is a run's change counted per target, and the vendor-file
// diffs it recorded: everything but the prefix lists and the diff texts.
type ChangeSummary struct {
	Targets []ChangeTarget `json:"targets"`
	// Diffs lists the vendor files whose diff was recorded (after an
	// applied run).
	Diffs []DiffFile `json:"diffs"`
}

// ChangeTarget is one target's change: counts, and the origin ASNs added
// and removed (at most one per ASN in use: small next to the prefixes).
type ChangeTarget struct {
	Target      string   `json:"target"`
	Before      int      `json:"before"`
	After       int      `json:"after"`
	Added       int      `json:"added"`
	Removed     int      `json:"removed"`
	AddedASNs   []uint32 `json:"added_asns"`
	RemovedASNs []uint32 `json:"removed_asns"`
}

// Target returns the named target's change, or nil.
func (c *ChangeSummary) Target(name string) *ChangeTarget {
	for i := range c.Targets {
		if c.Targets[i].Target == name {
			return &c.Targets[i]
		}
	}
	return nil
}

// File returns the named file's diff, or nil.
func (c *ChangeSummary) File(name string) *DiffFile {
	for i := range c.Diffs {
		if c.Diffs[i].File == name {
			return &c.Diffs[i]
		}
	}
	return nil
}

// DiffFile is one vendor file's recorded diff: its size in lines (as
// split at newlines) and bytes.
type DiffFile struct {
	File  string `json:"file"`
	Lines int    `json:"lines"`
	Bytes int    `json:"bytes"`
}

type changeIndex struct {
	Chunk   int            `json:"chunk"`
	Targets []ChangeTarget `json:"targets"`
}

type diffIndex struct {
	Chunk int        `json:"chunk"`
	Files []DiffFile `json:"files"`
}

// TooLargeError: a whole read was asked of a change larger than the limit.
type TooLargeError struct {
	What  string
	Size  int
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: %d, more than the %d read at once: page through it", e.What, e.Size, e.Limit)
}

// ChangedError: the record was rewritten while it was paged through.
type ChangedError struct{ RunID uint64 }

func (e *ChangedError) Error() string {
	return fmt.Sprintf("run %d: its change was rewritten while it was read (an approval records the diffs): read it again", e.RunID)
}

func chunkKey(tag byte, list uint16, kind byte, chunk uint32) []byte {
	k := []byte{tag, 0, 0}
	binary.BigEndian.PutUint16(k[1:], list)
	if kind != 0 {
		k = append(k, kind)
	}
	return binary.BigEndian.AppendUint32(k, chunk)
}

func kindByte(kind string) (byte, error) {
	switch kind {
	case ChangeAdded:
		return 'a', nil
	case ChangeRemoved:
		return 'r', nil
	}
	return 0, fmt.Errorf("change %q: want %s or %s", kind, ChangeAdded, ChangeRemoved)
}

func gz(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// newSub replaces the sub-bucket name of b with an empty one carrying a
// new generation.
func newSub(root, b *bolt.Bucket, name []byte) (*bolt.Bucket, error) {
	if b.Bucket(name) != nil {
		if err := b.DeleteBucket(name); err != nil {
			return nil, err
		}
	}
	sub, err := b.CreateBucket(name)
	if err != nil {
		return nil, err
	}
	gen, err := root.NextSequence()
	if err != nil {
		return nil, err
	}
	return sub, sub.Put(keyGen, binary.BigEndian.AppendUint64(nil, gen))
}

// runBucket is the run's bucket in "changes" (created when create).
func runBucket(tx *bolt.Tx, id uint64, create bool) (root, b *bolt.Bucket, err error) {
	root = tx.Bucket(bucketChanges)
	if root == nil {
		if !create {
			return nil, nil, nil
		}
		if root, err = tx.CreateBucket(bucketChanges); err != nil {
			return nil, nil, err
		}
	}
	if b = root.Bucket(idKey(id)); b == nil && create {
		b, err = root.CreateBucket(idKey(id))
	}
	return root, b, err
}

// putDetail records d for run id. A Detail whose Change has no targets
// keeps the change already recorded (an approval adds the diffs of the
// files it wrote to the change recorded when the run was held); nil
// OutputDiffs keep the recorded diffs.
func putDetail(tx *bolt.Tx, id uint64, d *Detail) error {
	if err := migrateLegacy(tx, id); err != nil {
		return err
	}
	root, b, err := runBucket(tx, id, true)
	if err != nil {
		return err
	}
	if d.Change.Targets != nil || b.Bucket(subChange) == nil {
		if err := putChange(root, b, d.Change); err != nil {
			return fmt.Errorf("run %d change: %w", id, err)
		}
	}
	if d.OutputDiffs != nil {
		if err := putDiffs(root, b, d.OutputDiffs); err != nil {
			return fmt.Errorf("run %d diffs: %w", id, err)
		}
	}
	if d.Report != nil {
		data, err := json.Marshal(d.Report)
		if err == nil {
			data, err = gz(data)
		}
		if err == nil {
			err = b.Put(keyReport, data)
		}
		if err != nil {
			return fmt.Errorf("run %d report: %w", id, err)
		}
	}
	return nil
}

// RunReport is the report a run kept (nil: none, as for a run that failed
// before resolving or was recorded by an earlier version).
func (s *Store) RunReport(id uint64) (*Run, *report.Report, error) {
	var r *Run
	var rep *report.Report
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if r, _, err = s.recorded(tx, id); err != nil {
			return err
		}
		_, b, err := runBucket(tx, id, false)
		if err != nil || b == nil {
			return err
		}
		data := b.Get(keyReport)
		if data == nil {
			return nil
		}
		raw, err := gunzip(data)
		if err != nil {
			return s.corrupt(id, "report", err)
		}
		rep = new(report.Report)
		if err := json.Unmarshal(raw, rep); err != nil {
			return s.corrupt(id, "report", err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return r, rep, nil
}

func putChange(root, b *bolt.Bucket, ch policy.Change) error {
	c, err := newSub(root, b, subChange)
	if err != nil {
		return err
	}
	idx := changeIndex{Chunk: prefixesPerChunk, Targets: []ChangeTarget{}}
	for ti, tc := range ch.Targets {
		if ti > 0xffff {
			return fmt.Errorf("more than %d targets", 0xffff)
		}
		idx.Targets = append(idx.Targets, ChangeTarget{Target: tc.Target, Before: tc.Before, After: tc.After,
			Added: len(tc.Added), Removed: len(tc.Removed), AddedASNs: orEmpty(tc.AddedASNs), RemovedASNs: orEmpty(tc.RemovedASNs)})
		for _, l := range []struct {
			kind byte
			list []asn.Prefix
		}{{'a', tc.Added}, {'r', tc.Removed}} {
			for i := 0; i < len(l.list); i += prefixesPerChunk {
				data, err := json.Marshal(l.list[i:min(i+prefixesPerChunk, len(l.list))])
				if err != nil {
					return err
				}
				if data, err = gz(data); err != nil {
					return err
				}
				if err := c.Put(chunkKey('p', uint16(ti), l.kind, uint32(i/prefixesPerChunk)), data); err != nil {
					return err
				}
			}
		}
	}
	return putJSON(c, keyIndex, idx)
}

func orEmpty(a []uint32) []uint32 {
	if a == nil {
		return []uint32{}
	}
	return a
}

func putDiffs(root, b *bolt.Bucket, diffs []OutputDiff) error {
	d, err := newSub(root, b, subDiffs)
	if err != nil {
		return err
	}
	idx := diffIndex{Chunk: diffLinesPerChunk, Files: []DiffFile{}}
	for fi, od := range diffs {
		if fi > 0xffff {
			return fmt.Errorf("more than %d files", 0xffff)
		}
		text := od.Diff
		idx.Files = append(idx.Files, DiffFile{File: od.File, Lines: countLines(text), Bytes: len(text)})
		for chunk := uint32(0); text != ""; chunk++ {
			n := cutLines(text, diffLinesPerChunk)
			data, err := gz([]byte(text[:n]))
			if err != nil {
				return err
			}
			if err := d.Put(chunkKey('l', uint16(fi), 0, chunk), data); err != nil {
				return err
			}
			text = text[n:]
		}
	}
	return putJSON(d, keyIndex, idx)
}

// countLines counts s's lines as splitting it at newlines does (a final
// newline ends the last line).
func countLines(s string) int {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}

// cutLines returns the length of s's first n lines (with their newlines).
func cutLines(s string, n int) int {
	at := 0
	for range n {
		i := strings.IndexByte(s[at:], '\n')
		if i < 0 {
			return len(s)
		}
		at += i + 1
	}
	return at
}

// migrateLegacy moves a run's whole Detail (recorded by an earlier
// version) into the chunked layout before it is written to.
func migrateLegacy(tx *bolt.Tx, id uint64) error {
	details := tx.Bucket(bucketDetails)
	if details == nil {
		return nil
	}
	v := details.Get(idKey(id))
	if v == nil {
		return nil
	}
	var d Detail
	if err := getJSON(v, &d); err != nil {
		return fmt.Errorf("run %d detail: %w", id, err)
	}
	if err := details.Delete(idKey(id)); err != nil {
		return err
	}
	root, b, err := runBucket(tx, id, true)
	if err != nil {
		return err
	}
	if d.Change.Targets == nil {
		d.Change.Targets = []policy.TargetChange{}
	}
	if err := putChange(root, b, d.Change); err != nil {
		return err
	}
	if d.OutputDiffs != nil {
		return putDiffs(root, b, d.OutputDiffs)
	}
	return nil
}

func deleteDetail(tx *bolt.Tx, key []byte) error {
	if details := tx.Bucket(bucketDetails); details != nil {
		if err := details.Delete(key); err != nil {
			return err
		}
	}
	if root := tx.Bucket(bucketChanges); root != nil && root.Bucket(key) != nil {
		return root.DeleteBucket(key)
	}
	return nil
}

// recorded is what a read transaction finds for a run: the chunked
// buckets, or a legacy whole Detail.
type recorded struct {
	change, diffs *bolt.Bucket
	legacy        *Detail
}

func (s *Store) recorded(tx *bolt.Tx, id uint64) (*Run, *recorded, error) {
	runs := tx.Bucket(bucketRuns)
	if runs == nil {
		return nil, nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	v := runs.Get(idKey(id))
	if v == nil {
		return nil, nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	r, err := s.decodeRun(idKey(id), v)
	if err != nil {
		return nil, nil, err
	}
	rec := &recorded{}
	if _, b, _ := runBucket(tx, id, false); b != nil {
		rec.change, rec.diffs = b.Bucket(subChange), b.Bucket(subDiffs)
	} else if details := tx.Bucket(bucketDetails); details != nil {
		if v := details.Get(idKey(id)); v != nil {
			var d Detail
			if err := getJSON(v, &d); err != nil {
				return nil, nil, &CorruptError{Path: s.path, Err: fmt.Errorf("run %d detail: %w", id, err)}
			}
			rec.legacy = &d
		}
	}
	return r, rec, nil
}

func (s *Store) corrupt(id uint64, what string, err error) error {
	return &CorruptError{Path: s.path, Err: fmt.Errorf("run %d %s: %w", id, what, err)}
}

func (s *Store) changeIndex(id uint64, c *bolt.Bucket) (*changeIndex, error) {
	var idx changeIndex
	v := c.Get(keyIndex)
	if v == nil {
		return nil, s.corrupt(id, "change", errors.New("no index"))
	}
	if err := getJSON(v, &idx); err != nil || idx.Chunk <= 0 {
		return nil, s.corrupt(id, "change index", fmt.Errorf("undecodable (%v)", err))
	}
	return &idx, nil
}

func (s *Store) diffIndex(id uint64, d *bolt.Bucket) (*diffIndex, error) {
	var idx diffIndex
	v := d.Get(keyIndex)
	if v == nil {
		return nil, s.corrupt(id, "diffs", errors.New("no index"))
	}
	if err := getJSON(v, &idx); err != nil || idx.Chunk <= 0 {
		return nil, s.corrupt(id, "diff index", fmt.Errorf("undecodable (%v)", err))
	}
	return &idx, nil
}

// RunRecord returns one run's record (counts, guard, decision, outputs),
// not its change.
func (s *Store) RunRecord(id uint64) (*Run, error) {
	var r *Run
	err := s.view(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if runs == nil {
			return fmt.Errorf("run %d: %w", id, ErrNotFound)
		}
		v := runs.Get(idKey(id))
		if v == nil {
			return fmt.Errorf("run %d: %w", id, ErrNotFound)
		}
		var err error
		r, err = s.decodeRun(idKey(id), v)
		return err
	})
	return r, err
}

// RunChange returns one run's record and its change summary (nil when no
// change was recorded: a failed run, or one pruned of it).
func (s *Store) RunChange(id uint64) (*Run, *ChangeSummary, error) {
	var r *Run
	var sum *ChangeSummary
	err := s.view(func(tx *bolt.Tx) error {
		var rec *recorded
		var err error
		if r, rec, err = s.recorded(tx, id); err != nil {
			return err
		}
		switch {
		case rec.legacy != nil:
			sum = &ChangeSummary{Targets: []ChangeTarget{}, Diffs: []DiffFile{}}
			for _, tc := range rec.legacy.Change.Targets {
				sum.Targets = append(sum.Targets, ChangeTarget{Target: tc.Target, Before: tc.Before, After: tc.After,
					Added: len(tc.Added), Removed: len(tc.Removed), AddedASNs: orEmpty(tc.AddedASNs), RemovedASNs: orEmpty(tc.RemovedASNs)})
			}
			for _, od := range rec.legacy.OutputDiffs {
				sum.Diffs = append(sum.Diffs, DiffFile{File: od.File, Lines: countLines(od.Diff), Bytes: len(od.Diff)})
			}
		case rec.change != nil || rec.diffs != nil:
			sum = &ChangeSummary{Targets: []ChangeTarget{}, Diffs: []DiffFile{}}
			if rec.change != nil {
				idx, err := s.changeIndex(id, rec.change)
				if err != nil {
					return err
				}
				sum.Targets = idx.Targets
			}
			if rec.diffs != nil {
				idx, err := s.diffIndex(id, rec.diffs)
				if err != nil {
					return err
				}
				sum.Diffs = idx.Files
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return r, sum, nil
}

// PrefixQuery selects a page of one target's added or removed prefixes.
type PrefixQuery struct {
	Target string
	// Change is ChangeAdded or ChangeRemoved.
	Change        string
	Offset, Limit int
}

// RunPrefixes calls fn with the prefixes of the page q selects, a chunk at
// a time (no transaction is open while fn runs: a slow reader holds up
// nothing), and returns the length of the whole list. An unknown target
// is ErrNotFound.
func (s *Store) RunPrefixes(id uint64, q PrefixQuery, fn func([]asn.Prefix) error) (int, error) {
	kind, err := kindByte(q.Change)
	if err != nil {
		return 0, err
	}
	if q.Offset < 0 || q.Limit < 0 {
		return 0, fmt.Errorf("offset %d, limit %d: want 0 or more", q.Offset, q.Limit)
	}
	var legacy []asn.Prefix
	var gen []byte
	var ti, total, chunk int
	err = s.view(func(tx *bolt.Tx) error {
		_, rec, err := s.recorded(tx, id)
		if err != nil {
			return err
		}
		notFound := fmt.Errorf("run %d changed no target %q: %w", id, q.Target, ErrNotFound)
		if rec.legacy != nil {
			for _, tc := range rec.legacy.Change.Targets {
				if tc.Target == q.Target {
					legacy = tc.Added
					if kind == 'r' {
						legacy = tc.Removed
					}
					total = len(legacy)
					return nil
				}
			}
			return notFound
		}
		if rec.change == nil {
			return notFound
		}
		idx, err := s.changeIndex(id, rec.change)
		if err != nil {
			return err
		}
		ti = -1
		for i, t := range idx.Targets {
			if t.Target == q.Target {
				ti, total = i, t.Added
				if kind == 'r' {
					total = t.Removed
				}
			}
		}
		if ti < 0 {
			return notFound
		}
		chunk, gen = idx.Chunk, bytes.Clone(rec.change.Get(keyGen))
		return nil
	})
	if err != nil {
		return 0, err
	}
	end := min(q.Offset+q.Limit, total)
	if q.Offset >= end {
		return total, nil
	}
	if legacy != nil {
		return total, fn(legacy[q.Offset:end])
	}
	for c := q.Offset / chunk; c*chunk < end; c++ {
		var data []byte
		err := s.view(func(tx *bolt.Tx) error {
			_, rec, err := s.recorded(tx, id)
			if err != nil {
				return err
			}
			if rec.change == nil || !bytes.Equal(rec.change.Get(keyGen), gen) {
				return &ChangedError{RunID: id}
			}
			data = bytes.Clone(rec.change.Get(chunkKey('p', uint16(ti), kind, uint32(c))))
			return nil
		})
		if err != nil {
			return total, err
		}
		if data == nil {
			return total, s.corrupt(id, "change", fmt.Errorf("%s %s: chunk %d missing", q.Target, q.Change, c))
		}
		raw, err := gunzip(data)
		var list []asn.Prefix
		if err == nil {
			err = json.Unmarshal(raw, &list)
		}
		if err != nil {
			return total, s.corrupt(id, "change", fmt.Errorf("%s %s chunk %d: %w", q.Target, q.Change, c, err))
		}
		first := c * chunk
		lo, hi := max(q.Offset-first, 0), min(end-first, len(list))
		if lo >= hi {
			return total, s.corrupt(id, "change", fmt.Errorf("%s %s chunk %d: %d prefixes, want more", q.Target, q.Change, c, len(list)))
		}
		if err := fn(list[lo:hi]); err != nil {
			return total, err
		}
	}
	return total, nil
}

// RunDiff calls fn with the lines [offset, offset+limit) of a vendor
// file's recorded diff (limit < 0: to the end), a chunk at a time, each
// piece ending with its newline (but for a last line without one), and
// returns the file's number of lines. No transaction is open while fn
// runs. A file the run did not record is ErrNotFound.
func (s *Store) RunDiff(id uint64, file string, offset, limit int, fn func(text string) error) (int, error) {
	if offset < 0 {
		return 0, fmt.Errorf("offset %d: want 0 or more", offset)
	}
	var legacy *string
	var gen []byte
	var fi, total, chunk int
	err := s.view(func(tx *bolt.Tx) error {
		_, rec, err := s.recorded(tx, id)
		if err != nil {
			return err
		}
		notFound := fmt.Errorf("run %d recorded no diff of %q: %w", id, file, ErrNotFound)
		if rec.legacy != nil {
			for _, od := range rec.legacy.OutputDiffs {
				if od.File == file {
					legacy = &od.Diff
					total = countLines(od.Diff)
					return nil
				}
			}
			return notFound
		}
		if rec.diffs == nil {
			return notFound
		}
		idx, err := s.diffIndex(id, rec.diffs)
		if err != nil {
			return err
		}
		fi = -1
		for i, f := range idx.Files {
			if f.File == file {
				fi, total = i, f.Lines
			}
		}
		if fi < 0 {
			return notFound
		}
		chunk, gen = idx.Chunk, bytes.Clone(rec.diffs.Get(keyGen))
		return nil
	})
	if err != nil {
		return 0, err
	}
	end := total
	if limit >= 0 {
		end = min(offset+limit, total)
	}
	if offset >= end {
		return total, nil
	}
	if legacy != nil {
		text := *legacy
		from := cutLines(text, offset)
		return total, fn(text[from : from+cutLines(text[from:], end-offset)])
	}
	for c := offset / chunk; c*chunk < end; c++ {
		var data []byte
		err := s.view(func(tx *bolt.Tx) error {
			_, rec, err := s.recorded(tx, id)
			if err != nil {
				return err
			}
			if rec.diffs == nil || !bytes.Equal(rec.diffs.Get(keyGen), gen) {
				return &ChangedError{RunID: id}
			}
			data = bytes.Clone(rec.diffs.Get(chunkKey('l', uint16(fi), 0, uint32(c))))
			return nil
		})
		if err != nil {
			return total, err
		}
		if data == nil {
			return total, s.corrupt(id, "diffs", fmt.Errorf("%s: chunk %d missing", file, c))
		}
		raw, err := gunzip(data)
		if err != nil {
			return total, s.corrupt(id, "diffs", fmt.Errorf("%s chunk %d: %w", file, c, err))
		}
		text := string(raw)
		first := c * chunk
		from := cutLines(text, max(offset-first, 0))
		text = text[from:]
		text = text[:cutLines(text, end-max(offset, first))]
		if text == "" {
			return total, s.corrupt(id, "diffs", fmt.Errorf("%s chunk %d: shorter than its index says", file, c))
		}
		if err := fn(text); err != nil {
			return total, err
		}
	}
	return total, nil
}

// MaxWholeDetail bounds Run's whole read: prefixes over all targets.
const MaxWholeDetail = 100_000

// Run returns one run and its whole detail (nil when none was recorded).
// It is meant for small runs (tests, exports); a change of more than
// MaxWholeDetail prefixes is a TooLargeError: page through it with
// RunChange, RunPrefixes and RunDiff.
func (s *Store) Run(id uint64) (*Run, *Detail, error) {
	r, sum, err := s.RunChange(id)
	if err != nil || sum == nil {
		return r, nil, err
	}
	n := 0
	for _, t := range sum.Targets {
		n += t.Added + t.Removed
	}
	if n > MaxWholeDetail {
		return nil, nil, &TooLargeError{What: fmt.Sprintf("run %d changed prefixes", id), Size: n, Limit: MaxWholeDetail}
	}
	d := &Detail{Change: policy.Change{Targets: []policy.TargetChange{}}}
	for _, t := range sum.Targets {
		tc := policy.TargetChange{Target: t.Target, Before: t.Before, After: t.After, AddedASNs: t.AddedASNs, RemovedASNs: t.RemovedASNs}
		for _, l := range []struct {
			kind string
			dst  *[]asn.Prefix
		}{{ChangeAdded, &tc.Added}, {ChangeRemoved, &tc.Removed}} {
			if _, err := s.RunPrefixes(id, PrefixQuery{Target: t.Target, Change: l.kind, Limit: MaxWholeDetail}, func(ps []asn.Prefix) error {
				*l.dst = append(*l.dst, ps...)
				return nil
			}); err != nil {
				return nil, nil, err
			}
		}
		d.Change.Targets = append(d.Change.Targets, tc)
	}
	for _, f := range sum.Diffs {
		var b strings.Builder
		if _, err := s.RunDiff(id, f.File, 0, -1, func(text string) error {
			b.WriteString(text)
			return nil
		}); err != nil {
			return nil, nil, err
		}
		d.OutputDiffs = append(d.OutputDiffs, OutputDiff{File: f.File, Diff: b.String()})
	}
	return r, d, nil
}
