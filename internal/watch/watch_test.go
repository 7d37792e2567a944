package watch

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
)

// applier does what the daemon does with a batch, in memory: the real
// policy, the delta, the guard's verdict.
type applier struct {
	mu      sync.Mutex
	pol     policy.Policy
	snap    *asn.Snapshot
	in      *policy.Intent
	w       *Watch
	runs    []Result
	batches [][]Candidate
	// held runs: id -> state (waiting, rejected)
	heldRuns map[uint64][2]bool
	held     map[uint64]*asn.Snapshot
}

func newApplier(t *testing.T, cfg Config) (*applier, *Watch) {
	a := &applier{pol: policy.DefaultPolicy(), heldRuns: map[uint64][2]bool{}, held: map[uint64]*asn.Snapshot{}}
	a.snap = &asn.Snapshot{Targets: []asn.TargetResult{
		{Name: "bytedance", ID: 1, ASNs: []asn.ASN{{ASN: 396986}, {ASN: 138699}}, Prefixes: []asn.Prefix{{Prefix: netip.MustParsePrefix("71.18.0.0/21"), Origins: []uint32{396986}}}},
		{Name: "tencent", ID: 2, ASNs: []asn.ASN{{ASN: 45090}}},
	}}
	a.in = a.pol.Apply(a.snap)
	l := logrus.New()
	l.SetOutput(io.Discard)
	cfg.Quiet, cfg.MaxDelay, cfg.Retry = time.Millisecond, 5*time.Millisecond, 10*time.Millisecond
	a.w = New(cfg, logrus.NewEntry(l), a)
	a.w.SetApplied(a.in)
	return a, a.w
}

func (a *applier) ApplyWatch(_ context.Context, cands []Candidate, fits func(int) (bool, string)) (Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, cands)
	add := a.pol.Apply(Only(a.snap, cands))
	res := Result{Refused: map[Key]string{}}
	for _, d := range add.Dropped {
		res.Refused[Key{d.Target, netip.MustParsePrefix(d.Prefix)}] = d.Reason
	}
	in, added := AddTo(a.in, add)
	res.Added = len(added)
	if res.Added == 0 {
		res.Outcome = Refused
		return res, nil
	}
	res.RunID = uint64(len(a.runs) + 1)
	snap := Merge(a.snap, cands)
	if ok, _ := fits(res.Added); ok {
		res.Outcome = Applied
		a.snap, a.in = snap, in
		a.w.SetApplied(in)
	} else {
		res.Outcome = Held
		a.heldRuns[res.RunID] = [2]bool{true, false}
		a.held[res.RunID] = snap
	}
	a.runs = append(a.runs, res)
	return res, nil
}

func (a *applier) HeldState(id uint64) (bool, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.heldRuns[id]
	return s[0], s[1]
}

func (a *applier) decide(id uint64, approve bool) {
	a.mu.Lock()
	a.heldRuns[id] = [2]bool{false, !approve}
	if approve {
		a.snap = a.held[id]
		a.in = a.pol.Apply(a.snap)
	}
	in := a.in
	a.mu.Unlock()
	if approve {
		a.w.SetApplied(in)
	} else {
		a.w.wake()
	}
}

func (a *applier) prefixes(target string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.in.Target(target).Prefixes {
		out = append(out, p.Prefix.String())
	}
	return out
}

func (a *applier) results() []Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.runs)
}

// eventually polls cond until it holds (5 s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func route(src, peer, prefix string, path ...uint32) Route {
	r := Route{Source: src, Peer: netip.MustParseAddr(peer), PeerAS: 64500, Prefix: netip.MustParsePrefix(prefix), Path: path, At: time.Now()}
	if len(path) > 0 {
		r.Origin = path[len(path)-1]
	}
	return r
}

func run(t *testing.T, w *Watch) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestOriginDecides: a new prefix originated by a target ASN is applied
// with its evidence; one originated by another AS, one with the target
// ASN only in transit, one ending in an AS_SET and one already applied
// never make a candidate; a withdrawal withdraws nothing.
func TestOriginDecides(t *testing.T) {
	a, w := newApplier(t, Config{MaxAdditions: 100})
	run(t, w)
	w.Observe([]Route{
		route("feed:10.0.0.2", "10.0.0.2", "20.0.1.0/24", 174, 396986),
		route("feed:10.0.0.2", "10.0.0.2", "20.0.2.0/24", 174, 3356),
		route("feed:10.0.0.2", "10.0.0.2", "20.0.3.0/24", 174, 396986, 3356),
		{Source: "feed:10.0.0.2", Peer: netip.MustParseAddr("10.0.0.2"), Prefix: netip.MustParsePrefix("20.0.4.0/24"), Path: []uint32{174, 396986}}, // AS_SET end: origin 0
		route("feed:10.0.0.2", "10.0.0.2", "71.18.0.0/21", 174, 396986),
		route("bmp:10.0.0.9", "10.0.0.3", "2a0c:1::/32", 174, 45090),
	})
	eventually(t, "two prefixes applied", func() bool {
		return slices.Contains(a.prefixes("bytedance"), "20.0.1.0/24") && slices.Contains(a.prefixes("tencent"), "2a0c:1::/32")
	})
	if got := a.prefixes("bytedance"); !slices.Equal(got, []string{"20.0.1.0/24", "71.18.0.0/21"}) {
		t.Errorf("bytedance: %v", got)
	}
	p := a.in.Target("bytedance").Prefixes[0]
	if len(p.Evidence) != 1 || p.Evidence[0].Source != "feed:10.0.0.2" ||
		p.Evidence[0].Detail != "originated by AS396986: peer 10.0.0.2 (AS64500), AS path 174 396986" || !slices.Equal(p.Origins, []uint32{396986}) {
		t.Errorf("evidence: %+v", p)
	}
	// Withdrawn: still applied, and no run proposes anything.
	n := len(a.results())
	w.Observe([]Route{{Source: "feed:10.0.0.2", Peer: netip.MustParseAddr("10.0.0.2"), Prefix: netip.MustParsePrefix("20.0.1.0/24"), Withdraw: true}})
	w.Forget("bmp:10.0.0.9")
	if !w.step(context.Background()) || len(a.results()) != n || !slices.Contains(a.prefixes("bytedance"), "20.0.1.0/24") {
		t.Errorf("after the withdrawal: runs %v, bytedance %v", a.results(), a.prefixes("bytedance"))
	}
	if s := w.Stats(); s.Routes != 1 || s.Candidates != 0 || s.Applied != 2 { // 71.18.0.0/21 is still seen
		t.Errorf("stats %+v", s)
	}
}

// TestMinSources: a candidate needs sightings from min_sources
// routers/peers.
func TestMinSources(t *testing.T) {
	_, w := newApplier(t, Config{MaxAdditions: 100, MinSources: 2})
	w.Observe([]Route{route("bmp:10.0.0.9", "10.0.0.3", "20.0.1.0/24", 174, 396986)})
	w.Observe([]Route{route("bmp:10.0.0.9", "10.0.0.3", "20.0.1.0/24", 174, 396986)}) // the same again
	if c := w.Pending(); len(c) != 0 {
		t.Fatalf("one source: %v", c)
	}
	w.Observe([]Route{route("bmp:10.0.0.9", "10.0.0.4", "20.0.1.0/24", 3356, 396986)})
	c := w.Pending()
	if len(c) != 1 || len(c[0].Evidence) != 2 || c[0].Target != "bytedance" {
		t.Fatalf("two sources: %+v", c)
	}
}

// TestBurstIsHeld: within max_additions per window a batch is applied;
// beyond it the whole batch is held, proposed again only with new
// candidates, and applied on approval; a rejected batch is not proposed
// again while its routes are seen.
func TestBurstIsHeld(t *testing.T) {
	a, w := newApplier(t, Config{MaxAdditions: 100, Window: time.Hour})
	burst := func(from, n int) []Route {
		var rs []Route
		for i := from; i < from+n; i++ {
			rs = append(rs, route("feed:10.0.0.2", "10.0.0.2", fmt.Sprintf("20.%d.%d.0/24", i/256, i%256), 174, 396986))
		}
		return rs
	}
	w.Observe(burst(0, 60))
	if !w.step(context.Background()) {
		t.Fatal("step")
	}
	if r := a.results(); len(r) != 1 || r[0].Outcome != Applied || r[0].Added != 60 {
		t.Fatalf("first batch: %+v", r)
	}
	w.Observe(burst(60, 50)) // 60 + 50 > 100 in the window
	w.step(context.Background())
	r := a.results()
	if len(r) != 2 || r[1].Outcome != Held || r[1].Added != 50 || len(a.prefixes("bytedance")) != 61 {
		t.Fatalf("second batch: %+v, %d prefixes", r, len(a.prefixes("bytedance")))
	}
	w.step(context.Background()) // nothing new: not proposed again
	if len(a.results()) != 2 {
		t.Fatalf("held batch proposed again: %+v", a.results())
	}
	w.Observe(burst(110, 1)) // new: the whole pending set again
	w.step(context.Background())
	r = a.results()
	if len(r) != 3 || r[2].Outcome != Held || r[2].Added != 51 {
		t.Fatalf("third batch: %+v", r)
	}
	a.decide(r[2].RunID, true)
	if n := len(a.prefixes("bytedance")); n != 112 {
		t.Fatalf("approved: %d prefixes", n)
	}
	w.step(context.Background())
	if len(a.results()) != 3 {
		t.Fatalf("after approval: %+v", a.results())
	}
	// Rejected: not proposed again.
	a.w.mu.Lock()
	a.w.additions = nil
	a.w.cfg.MaxAdditions = 0
	a.w.mu.Unlock()
	w.Observe(burst(200, 3))
	w.step(context.Background())
	r = a.results()
	if len(r) != 4 || r[3].Outcome != Held {
		t.Fatalf("fourth batch: %+v", r)
	}
	a.decide(r[3].RunID, false)
	w.step(context.Background())
	if len(a.results()) != 4 || len(w.Pending()) != 0 {
		t.Fatalf("rejected batch proposed again: %+v", a.results())
	}
}

// TestPolicyRefuses: a candidate the policy drops (a bogon, a protected
// prefix) is refused once and not proposed again while seen.
func TestPolicyRefuses(t *testing.T) {
	a, w := newApplier(t, Config{MaxAdditions: 100})
	w.Observe([]Route{route("feed:10.0.0.2", "10.0.0.2", "192.0.2.0/24", 174, 396986)})
	w.step(context.Background())
	if r := a.results(); len(r) != 0 {
		t.Fatalf("runs %+v", r)
	}
	if c := w.Pending(); len(c) != 0 {
		t.Fatalf("pending %+v", c)
	}
	if s := w.Stats(); s.Refused != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestCarry: a prefix applied from the watch stays across resolves until
// a scheduled run; a scheduled run keeps it only while routing shows it.
func TestCarry(t *testing.T) {
	ev := asn.Evidence{Source: "feed:10.0.0.2", Detail: "originated by AS396986", Seen: time.Unix(1e9, 0).UTC()}
	prev := &asn.Snapshot{Targets: []asn.TargetResult{{Name: "bytedance", ASNs: []asn.ASN{{ASN: 396986}}, Prefixes: []asn.Prefix{
		{Prefix: netip.MustParsePrefix("20.0.1.0/24"), Origins: []uint32{396986}, Evidence: []asn.Evidence{ev}},
		{Prefix: netip.MustParsePrefix("20.0.2.0/24"), Origins: []uint32{396986}, Evidence: []asn.Evidence{ev}},
		{Prefix: netip.MustParsePrefix("71.18.0.0/21"), Origins: []uint32{396986}, Evidence: []asn.Evidence{{Source: "rpki"}, ev}},
	}}}}
	cur := func() *asn.Snapshot {
		return &asn.Snapshot{Targets: []asn.TargetResult{{Name: "bytedance", ASNs: []asn.ASN{{ASN: 396986}}, Prefixes: []asn.Prefix{
			{Prefix: netip.MustParsePrefix("71.18.0.0/21"), Origins: []uint32{396986}, Evidence: []asn.Evidence{{Source: "rpki"}}},
		}}}}
	}
	liveEv := asn.Evidence{Source: "bmp:10.0.0.9", Detail: "now"}
	live := []Candidate{{Target: "bytedance", Prefix: netip.MustParsePrefix("20.0.2.0/24"), Origins: []uint32{396986}, Evidence: []asn.Evidence{liveEv}}}

	c := cur()
	if n := Carry(prev, c, live, false); n != 2 || len(c.Targets[0].Prefixes) != 3 {
		t.Fatalf("not scheduled: carried %d, %+v", n, c.Targets[0].Prefixes)
	}
	if e := c.Targets[0].Prefixes[0].Evidence; len(e) != 1 || e[0] != ev {
		t.Errorf("20.0.1.0/24 evidence %+v", e)
	}
	c = cur()
	if n := Carry(prev, c, live, true); n != 1 || len(c.Targets[0].Prefixes) != 2 || c.Targets[0].Prefixes[0].Prefix.String() != "20.0.2.0/24" {
		t.Fatalf("scheduled: carried %d, %+v", n, c.Targets[0].Prefixes)
	}
	if e := c.Targets[0].Prefixes[0].Evidence; len(e) != 1 || e[0] != liveEv {
		t.Errorf("20.0.2.0/24 evidence %+v", e)
	}
	if e := c.Targets[0].Prefixes[1].Evidence; len(e) != 1 || e[0].Source != "rpki" {
		t.Errorf("71.18.0.0/21 evidence %+v (the old watch evidence is gone, the registry's stays)", e)
	}
}
