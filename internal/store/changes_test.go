package store

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// bigChange is a change adding n IPv4 /32s (with evidence) to target "a"
// and removing n/3 IPv6 /64s from target "b", sorted as policy.Compare
// sorts them.
func bigChange(n int) policy.Change {
	seen := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	ev := func(i int) []asn.Evidence {
		return []asn.Evidence{{Source: "irr:TEST", Detail: fmt.Sprintf("route object %d", i), Seen: seen}}
	}
	a := policy.TargetChange{Target: "a", Before: 10, After: 10 + n, AddedASNs: []uint32{64500, 64501}}
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		a.Added = append(a.Added, asn.Prefix{Prefix: p, Origins: []uint32{64500}, Evidence: ev(i)})
	}
	b := policy.TargetChange{Target: "b", Before: n / 3, After: 0, RemovedASNs: []uint32{64510}}
	for i := range n / 3 {
		addr := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i)})
		b.Removed = append(b.Removed, asn.Prefix{Prefix: netip.PrefixFrom(addr, 64), Origins: []uint32{64510}, Evidence: ev(i)})
	}
	return policy.Change{Targets: []policy.TargetChange{a, b, {Target: "c", Before: 3, After: 3}}}
}

// diffText is a unified-diff-like text of n lines.
func diffText(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "+line %d\n", i)
	}
	return b.String()
}

func page(t *testing.T, s *Store, id uint64, q PrefixQuery) ([]asn.Prefix, int) {
	t.Helper()
	var out []asn.Prefix
	total, err := s.RunPrefixes(id, q, func(ps []asn.Prefix) error {
		out = append(out, ps...)
		return nil
	})
	if err != nil {
		t.Fatalf("%+v: %v", q, err)
	}
	return out, total
}

// TestChangePagedReads: a change of 30k prefixes is stored in chunks; its
// summary, any page of either list (across chunk boundaries) and any range
// of a diff's lines read back exactly. (internal/api's tests page through
// 200k and see a whole read refused.)
func TestChangePagedReads(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	const n = 30_000
	ch := bigChange(n)
	diffs := []OutputDiff{{File: "asfence-junos.conf", Diff: diffText(5000)}, {File: "asfence-bird.conf", Diff: "-old\n+new"}, {File: "empty.conf", Diff: ""}}
	r, err := s.BeginRun("schedule", t0)
	if err != nil {
		t.Fatal(err)
	}
	r.Outcome, r.Diff = Applied, Summarize(ch)
	if err := s.PutRun(r, &Detail{Change: ch, OutputDiffs: diffs}); err != nil {
		t.Fatal(err)
	}
	got, sum, err := s.RunChange(r.ID)
	if err != nil || got.ID != r.ID || sum == nil {
		t.Fatalf("RunChange = %v %v %v", got, sum, err)
	}
	want := []ChangeTarget{{Target: "a", Before: 10, After: 10 + n, Added: n, AddedASNs: []uint32{64500, 64501}, RemovedASNs: []uint32{}},
		{Target: "b", Before: n / 3, Removed: n / 3, AddedASNs: []uint32{}, RemovedASNs: []uint32{64510}},
		{Target: "c", Before: 3, After: 3, AddedASNs: []uint32{}, RemovedASNs: []uint32{}}}
	if fmt.Sprint(sum.Targets) != fmt.Sprint(want) {
		t.Fatalf("summary targets = %v\nwant %v", sum.Targets, want)
	}
	if fmt.Sprint(sum.Diffs) != fmt.Sprint([]DiffFile{{"asfence-junos.conf", 5000, len(diffs[0].Diff)}, {"asfence-bird.conf", 2, 9}, {"empty.conf", 0, 0}}) {
		t.Fatalf("summary diffs = %v", sum.Diffs)
	}
	for _, q := range []PrefixQuery{
		{Target: "a", Change: ChangeAdded, Offset: 0, Limit: 100},
		{Target: "a", Change: ChangeAdded, Offset: prefixesPerChunk - 7, Limit: 20},
		{Target: "a", Change: ChangeAdded, Offset: 1000, Limit: 10_000},
		{Target: "a", Change: ChangeAdded, Offset: n - 5, Limit: 100},
		{Target: "a", Change: ChangeAdded, Offset: n, Limit: 100},
		{Target: "a", Change: ChangeRemoved, Offset: 0, Limit: 100},
		{Target: "b", Change: ChangeRemoved, Offset: 12345, Limit: 3000},
		{Target: "c", Change: ChangeAdded, Limit: 10},
	} {
		list := ch.Targets[slices.IndexFunc(ch.Targets, func(tc policy.TargetChange) bool { return tc.Target == q.Target })].Added
		if q.Change == ChangeRemoved {
			list = ch.Targets[slices.IndexFunc(ch.Targets, func(tc policy.TargetChange) bool { return tc.Target == q.Target })].Removed
		}
		ps, total := page(t, s, r.ID, q)
		wantPage := list[min(q.Offset, len(list)):min(q.Offset+q.Limit, len(list))]
		if total != len(list) || len(ps) != len(wantPage) {
			t.Fatalf("%+v: %d of %d, want %d of %d", q, len(ps), total, len(wantPage), len(list))
		}
		for i := range ps {
			if ps[i].Prefix != wantPage[i].Prefix || len(ps[i].Evidence) != 1 || ps[i].Evidence[0] != wantPage[i].Evidence[0] {
				t.Fatalf("%+v: row %d = %+v, want %+v", q, i, ps[i], wantPage[i])
			}
		}
	}
	if _, err := s.RunPrefixes(r.ID, PrefixQuery{Target: "nope", Change: ChangeAdded, Limit: 1}, func([]asn.Prefix) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown target: %v", err)
	}
	if _, err := s.RunPrefixes(r.ID, PrefixQuery{Target: "a", Change: "both", Limit: 1}, func([]asn.Prefix) error { return nil }); err == nil {
		t.Fatal("unknown change kind accepted")
	}
	if _, err := s.RunPrefixes(99, PrefixQuery{Target: "a", Change: ChangeAdded, Limit: 1}, func([]asn.Prefix) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}

	lines := strings.SplitAfter(diffs[0].Diff, "\n")
	for _, c := range []struct{ offset, limit int }{{0, 60}, {990, 20}, {0, -1}, {4990, 1000}, {5000, 10}, {2000, 2000}, {1999, 1}} {
		var b strings.Builder
		total, err := s.RunDiff(r.ID, "asfence-junos.conf", c.offset, c.limit, func(text string) error {
			b.WriteString(text)
			return nil
		})
		end := 5000
		if c.limit >= 0 {
			end = min(c.offset+c.limit, 5000)
		}
		if w := strings.Join(lines[min(c.offset, end):end], ""); err != nil || total != 5000 || b.String() != w {
			t.Fatalf("diff lines %+v: %d lines, %d bytes, %v; want %d bytes", c, total, b.Len(), err, len(w))
		}
	}
	var bird strings.Builder
	if n, err := s.RunDiff(r.ID, "asfence-bird.conf", 0, -1, func(text string) error { bird.WriteString(text); return nil }); err != nil || n != 2 || bird.String() != "-old\n+new" {
		t.Fatalf("bird diff = %q (%d lines), %v", bird.String(), n, err)
	}
	if _, err := s.RunDiff(r.ID, "asfence-nokia.conf", 0, -1, func(string) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown file: %v", err)
	}

}

// TestApprovalAddsDiffsAndKeepsTheChange: a held run's change recorded at
// hold time stays when the approval records the written files' diffs (a
// reader paging meanwhile reads on); a reader paging across a rewrite of
// the change itself is told so instead of mixing records.
func TestApprovalAddsDiffsAndKeepsTheChange(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	ch := bigChange(3000)
	r, _ := s.BeginRun("schedule", t0)
	r.Outcome, r.Guard = Held, []string{"a: would add 3000"}
	if err := s.Hold(r, &Detail{Change: ch}, embeddedState(t, r.ID)); err != nil {
		t.Fatal(err)
	}
	if _, sum, _ := s.RunChange(r.ID); sum == nil || len(sum.Diffs) != 0 || sum.Target("a").Added != 3000 {
		t.Fatalf("held summary = %+v", sum)
	}
	var read []asn.Prefix
	_, err := s.RunPrefixes(r.ID, PrefixQuery{Target: "a", Change: ChangeAdded, Limit: 3000}, func(ps []asn.Prefix) error {
		if len(read) == 0 { // the approval commits while the reader pages
			r.Decision = &Decision{Action: Approved, At: t0}
			if err := s.PutRun(r, &Detail{OutputDiffs: []OutputDiff{{File: "f", Diff: "+x\n"}}}); err != nil {
				return err
			}
		}
		read = append(read, ps...)
		return nil
	})
	if err != nil || len(read) != 3000 || read[2999].Prefix != ch.Targets[0].Added[2999].Prefix {
		t.Fatalf("paging across the approval: %d read, %v", len(read), err)
	}
	_, d, err := s.Run(r.ID)
	if err != nil || len(d.Change.Targets) != 3 || len(d.Change.Targets[0].Added) != 3000 || len(d.OutputDiffs) != 1 || d.OutputDiffs[0].Diff != "+x\n" {
		t.Fatalf("after approval: %v, %+v", err, d)
	}
	calls := 0
	_, err = s.RunPrefixes(r.ID, PrefixQuery{Target: "a", Change: ChangeAdded, Limit: 3000}, func([]asn.Prefix) error {
		calls++
		return s.PutRun(r, &Detail{Change: bigChange(2000)})
	})
	var ce *ChangedError
	if !errors.As(err, &ce) || calls != 1 {
		t.Fatalf("paging across a rewrite: %d calls, %v", calls, err)
	}
}

// TestLegacyDetailIsRead: a run recorded whole by an earlier version is
// read (summary, pages, diffs), moved to the chunked layout when it is
// written to, and pruned with its run.
func TestLegacyDetailIsRead(t *testing.T) {
	s := openRW(t, t.TempDir())
	defer s.Close()
	ch := bigChange(700)
	r, _ := s.BeginRun("schedule", t0)
	r.Outcome = Applied
	if err := s.PutRun(r, nil); err != nil {
		t.Fatal(err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDetails), idKey(r.ID), &Detail{Change: ch, OutputDiffs: []OutputDiff{{File: "f", Diff: "a\nb\nc\n"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		_, sum, err := s.RunChange(r.ID)
		if err != nil || sum == nil || sum.Target("a").Added != 700 || sum.File("f") == nil || sum.File("f").Lines != 3 {
			t.Fatalf("%s: summary %+v, %v", when, sum, err)
		}
		ps, total := page(t, s, r.ID, PrefixQuery{Target: "a", Change: ChangeAdded, Offset: 510, Limit: 10})
		if total != 700 || len(ps) != 10 || ps[0].Prefix != ch.Targets[0].Added[510].Prefix {
			t.Fatalf("%s: page %v of %d", when, ps, total)
		}
		var b strings.Builder
		if _, err := s.RunDiff(r.ID, "f", 1, 1, func(x string) error { b.WriteString(x); return nil }); err != nil || b.String() != "b\n" {
			t.Fatalf("%s: diff line 2 = %q, %v", when, b.String(), err)
		}
	}
	check("legacy")
	r.Decision = &Decision{Action: Approved, At: t0}
	if err := s.PutRun(r, &Detail{}); err != nil {
		t.Fatal(err)
	}
	check("migrated")
	_ = s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDetails).Get(idKey(r.ID)) != nil {
			t.Error("legacy record left after migration")
		}
		return nil
	})
	for range 3 {
		x, _ := s.BeginRun("schedule", t0)
		x.Outcome = Unchanged
		if err := s.PutRun(x, &Detail{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Prune(Retention{Runs: 2}, t0); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	_ = s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketChanges).Bucket(idKey(r.ID)) != nil {
			t.Error("pruned run's change left")
		}
		return nil
	})
}
