package asn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// graphSource is a Follower over a fixed graph: each known ASN leads to
// the ASNs listed for it (as an organisation handle or an opaque-id would),
// and every ASN it is asked about gets one prefix. It records what it was
// asked.
type graphSource struct {
	name  string
	links map[uint32][]uint32
	mu    sync.Mutex
	asked [][]uint32 // the known ASNs of each Discover/Follow call
	res   []uint32   // the ASNs Resolve was asked about
}

func (g *graphSource) Name() string { return g.name }

func (g *graphSource) Discover(ctx context.Context, t *Target) ([]ASNFact, error) {
	var seeds []uint32
	for _, s := range t.ActiveASNs() {
		seeds = append(seeds, s.ASN)
	}
	return g.Follow(ctx, t, seeds)
}

func (g *graphSource) Follow(_ context.Context, _ *Target, known []uint32) ([]ASNFact, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, slices.Clone(known))
	var out []ASNFact
	for _, k := range known {
		for _, a := range g.links[k] {
			out = append(out, ASNFact{ASN: a, Evidence: Evidence{Source: g.name, Detail: fmt.Sprintf("linked from AS%d", k)}})
		}
	}
	return out, nil
}

func (g *graphSource) Resolve(_ context.Context, _ *Target, asns []uint32) (Facts, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.res = slices.Clone(asns)
	var f Facts
	for _, a := range asns {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(a >> 8), byte(a), 0}), 24)
		f.Prefixes = append(f.Prefixes, PrefixFact{Prefix: p, Origin: a, Evidence: Evidence{Source: g.name}})
	}
	return f, nil
}

// TestDiscoveryClosure: discovery in one source feeds another's (and its
// own) until nothing new is found; every ASN found is resolved by every
// source, with its chain of evidence.
func TestDiscoveryClosure(t *testing.T) {
	// a: 1 -> 2, 3 -> 4 (e.g. organisation handles); b: 2 -> 3 (e.g.
	// opaque-ids). From seed 1: round 1 finds 2, round 2 finds 3 (b from
	// 2), round 3 finds 4 (a from 3), round 4 finds nothing.
	a := &graphSource{name: "a", links: map[uint32][]uint32{1: {2}, 3: {4}}}
	b := &graphSource{name: "b", links: map[uint32][]uint32{2: {3}}}
	plain := fakeSource{name: "plain", facts: Facts{Prefixes: []PrefixFact{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Evidence: Evidence{Source: "plain"}}}}}
	e := &Engine{Sources: []Source{a, b, plain}, Now: func() time.Time { return time.Unix(0, 0) }}
	s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) != 0 {
		t.Fatalf("incomplete %+v", s.Incomplete)
	}
	tr := s.Target("t")
	var got []uint32
	for _, x := range tr.ASNs {
		got = append(got, x.ASN)
	}
	if !slices.Equal(got, []uint32{1, 2, 3, 4}) {
		t.Fatalf("ASNs %v, want 1-4", got)
	}
	if ev := tr.ASNs[3].Evidence; len(ev) != 1 || ev[0].Source != "a" || ev[0].Detail != "linked from AS3" {
		t.Errorf("AS4 evidence %+v", ev)
	}
	if len(a.asked) != 4 || !slices.Equal(a.asked[3], []uint32{1, 2, 3, 4}) {
		t.Errorf("rounds of a: %v", a.asked)
	}
	for _, g := range []*graphSource{a, b} {
		if !slices.Equal(g.res, []uint32{1, 2, 3, 4}) {
			t.Errorf("%s resolved %v", g.name, g.res)
		}
	}
	if len(tr.Prefixes) != 5 { // one per ASN from each of a and b (same prefix), plus plain's
		t.Errorf("prefixes %+v", tr.Prefixes)
	}
}

// TestDiscoveryClosureBounded: a chain that keeps growing stops after
// MaxDiscoveryRounds and says so; exclusions and the name-only opt-in stop
// the closure from following the ASNs they remove.
func TestDiscoveryClosureBounded(t *testing.T) {
	links := map[uint32][]uint32{}
	for i := uint32(1); i < 100; i++ {
		links[i] = []uint32{i + 1}
	}
	g := &graphSource{name: "chain", links: links}
	e := &Engine{Sources: []Source{g}}
	s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Target("t").ASNs); n != MaxDiscoveryRounds+1 {
		t.Errorf("%d ASNs after %d rounds", n, MaxDiscoveryRounds)
	}
	if len(s.Incomplete) != 1 || s.Incomplete[0].Source != "discovery" || !strings.Contains(s.Incomplete[0].Error, "after 5 rounds") {
		t.Errorf("incomplete %+v", s.Incomplete)
	}

	// AS3 is excluded and AS2 name-only (not opted in): nothing is
	// followed from them.
	g = &graphSource{name: "chain", links: links}
	e.Sources = []Source{g}
	s, err = e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 1}}, NameOnly: []SeedASN{{ASN: 2}}}})
	if err != nil || len(s.Target("t").ASNs) != 1 || len(g.asked) != 1 {
		t.Errorf("name-only followed: %+v, %d rounds, %v", s.Target("t").ASNs, len(g.asked), err)
	}
	g = &graphSource{name: "chain", links: links}
	e.Sources = []Source{g}
	s, err = e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 1}}, ExcludeASNs: []uint32{3}}})
	if err != nil || len(s.Target("t").ASNs) != 2 {
		t.Errorf("excluded ASN followed: %+v, %v", s.Target("t").ASNs, err)
	}
}

// slowSource asks for a longer query timeout than the engine's.
type slowSource struct{ fakeSource }

func (slowSource) QueryTimeout() time.Duration { return time.Hour }
func (s slowSource) Discover(ctx context.Context, _ *Target) ([]ASNFact, error) {
	d, ok := ctx.Deadline()
	if !ok || time.Until(d) < 30*time.Minute {
		return nil, errors.New("deadline too short")
	}
	return nil, nil
}

func TestQueryTimeouter(t *testing.T) {
	e := &Engine{Sources: []Source{slowSource{fakeSource{name: "slow"}}}, Timeout: time.Second}
	s, err := e.Run(context.Background(), []Target{{Name: "t", ASNs: []SeedASN{{ASN: 1}}}})
	if err != nil || len(s.Incomplete) != 0 {
		t.Fatalf("%v %+v", err, s.Incomplete)
	}
}
