package store

import (
	"net/netip"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

func intentOf(prefixes ...string) *policy.Intent {
	t := policy.TargetIntent{Name: "t"}
	for _, p := range prefixes {
		t.Prefixes = append(t.Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix(p)})
	}
	return &policy.Intent{Targets: []policy.TargetIntent{t}}
}

// TestGuardBaseFollowsTheWindow: the base is the set in force at the
// window's start, or the oldest recorded after it; an approved set is the
// base from then on; what is no longer needed is forgotten.
func TestGuardBaseFollowsTheWindow(t *testing.T) {
	dir := t.TempDir()
	s := openRW(t, dir)
	if b, err := s.GuardBase(t0); b != nil || err != nil {
		t.Fatalf("empty store: %v %v", b, err)
	}
	h := time.Hour
	add := func(id uint64, at time.Time, approved bool, since time.Time, prefixes ...string) {
		t.Helper()
		if err := s.AddGuardBase(id, at, intentOf(prefixes...), approved, since); err != nil {
			t.Fatal(err)
		}
	}
	base := func(since time.Time) uint64 {
		t.Helper()
		b, err := s.GuardBase(since)
		if err != nil || b == nil {
			t.Fatalf("GuardBase(%s) = %v, %v", since, b, err)
		}
		return b.RunID
	}
	add(1, t0, false, t0.Add(-24*h), "1.0.0.0/24", "1.0.1.0/24")
	add(2, t0.Add(2*h), false, t0.Add(-22*h), "1.0.0.0/24")
	add(3, t0.Add(4*h), false, t0.Add(-20*h), "1.0.1.0/24")
	if id := base(t0.Add(-20 * h)); id != 1 {
		t.Fatalf("nothing in force at the window start: base run %d, want the oldest (1)", id)
	}
	if id := base(t0.Add(3 * h)); id != 2 {
		t.Fatalf("base run %d, want 2 (in force at the window start)", id)
	}
	b, _ := s.GuardBase(t0.Add(5 * h))
	if b.RunID != 3 || len(b.Targets["t"]) != 1 || b.Targets["t"][0] != netip.MustParsePrefix("1.0.1.0/24") {
		t.Fatalf("base %+v", b)
	}
	// A new set once runs 1 and 2 lie before the window start: 1 is gone.
	add(4, t0.Add(30*h), false, t0.Add(6*h), "1.0.2.0/24")
	if id := base(t0); id != 3 {
		t.Fatalf("after pruning, base before the window = run %d, want 3 (the oldest kept)", id)
	}
	// An approval is the operator's word: earlier sets no longer count.
	add(5, t0.Add(31*h), true, t0.Add(7*h), "1.0.3.0/24")
	if id := base(t0.Add(7 * h)); id != 5 {
		t.Fatalf("after an approval, base run %d, want 5", id)
	}
	s.Close()
	s = openRW(t, dir)
	defer s.Close()
	if b, err := s.GuardBase(t0.Add(40 * h)); err != nil || b.RunID != 5 || b.Approved != true {
		t.Fatalf("after reopening: %+v %v", b, err)
	}
}
