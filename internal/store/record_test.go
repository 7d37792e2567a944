package store

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// oldRun is a run record as versions that kept the speaker's counts as a
// map of kind to count wrote it.
const oldRun = `{"id":1,"trigger":"schedule","start":"2026-11-23T12:00:00Z","end":"2026-11-23T12:00:05Z","outcome":"applied",` +
	`"sources":[{"source":"irr:RADB","ok":true}],"carried_over":{"asns":0,"prefixes":0},` +
	`"targets":[{"target":"tencent","ipv4":40,"ipv6":2,"asns":3}],"diff":{"added":5,"removed":2,"added_asns":0,"removed_asns":0},` +
	`"bgp":{"added":5,"replaced":1,"withdrawn":2}}`

// TestOldRunRecordIsRead: a store holding a run in that layout opens, the
// run reads with its counts, and writing it back keeps the layout of the
// fields it had.
func TestOldRunRecordIsRead(t *testing.T) {
	dir := t.TempDir()
	s := openRW(t, dir)
	if err := s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		return b.Put(idKey(1), []byte(oldRun))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openRW(t, dir)
	defer s.Close()
	runs, err := s.Runs(ListOptions{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %+v (%v)", runs, err)
	}
	r := runs[0]
	if r.BGP == nil || r.BGP.Added != 5 || r.BGP.Withdrawn != 2 || r.BGP.Replaced != 1 || r.BGP.Refused != 0 || r.BGP.ByFamily != nil ||
		r.Outcome != Applied || len(r.Targets) != 1 || r.Targets[0].IPv4 != 40 {
		t.Fatalf("old record read as %+v (bgp %+v)", r, r.BGP)
	}
	if err := s.PutRun(r, nil); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	_ = s.view(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketRuns).Get(idKey(1)))
		return nil
	})
	if !bytes.Contains(raw, []byte(`"bgp":{"added":5,"replaced":1,"withdrawn":2}`)) {
		t.Errorf("rewritten record %s", raw)
	}
}
