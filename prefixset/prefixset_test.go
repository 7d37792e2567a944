package prefixset

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/asfence/asfence/internal/prefixtest"
)

// Property tests of the prefix algebra against brute-force oracles, on
// random sets built to contain nested, adjacent and sibling prefixes.

// genSet returns random prefixes of one family inside base: fresh random
// prefixes, children and parents of earlier ones, and their neighbours.
func genSet(r *rand.Rand, base netip.Prefix, n, maxLen int) []netip.Prefix {
	var out []netip.Prefix
	randIn := func() netip.Prefix {
		l := base.Bits() + r.IntN(maxLen-base.Bits()+1)
		return netip.PrefixFrom(prefixtest.RandomIn(r, base), l).Masked()
	}
	for len(out) < n {
		if len(out) == 0 || r.IntN(3) == 0 {
			out = append(out, randIn())
			continue
		}
		p := out[r.IntN(len(out))]
		switch r.IntN(4) {
		case 0: // a more-specific
			if p.Bits() < maxLen {
				l := p.Bits() + 1 + r.IntN(maxLen-p.Bits())
				out = append(out, netip.PrefixFrom(prefixtest.RandomIn(r, p), l).Masked())
			}
		case 1: // the sibling
			if p.Bits() > base.Bits() {
				out = append(out, prefixtest.Sibling(p))
			}
		case 2: // the next prefix of the same length (adjacent, maybe not a sibling)
			if next, ok := nextPrefix(p); ok && base.Contains(next.Addr()) {
				out = append(out, next)
			}
		case 3: // the parent
			if p.Bits() > base.Bits() {
				out = append(out, netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked())
			}
		}
	}
	return out
}

func nextPrefix(p netip.Prefix) (netip.Prefix, bool) {
	a := prefixtest.LastAddr(p).Next()
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, p.Bits()).Masked(), true
}

// probeAddrs are the boundary addresses of every prefix (first, last and
// their outside neighbours) plus random addresses in base.
func probeAddrs(r *rand.Rand, base netip.Prefix, sets ...[]netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, s := range sets {
		for _, p := range s {
			first, last := p.Addr(), prefixtest.LastAddr(p)
			out = append(out, first, last)
			if a := first.Prev(); a.IsValid() {
				out = append(out, a)
			}
			if a := last.Next(); a.IsValid() {
				out = append(out, a)
			}
		}
	}
	for range 500 {
		out = append(out, prefixtest.RandomIn(r, base))
	}
	return out
}

func covered(set []netip.Prefix, a netip.Addr) bool {
	for _, p := range set {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var bases = []struct {
	base   netip.Prefix
	maxLen int
}{
	{netip.MustParsePrefix("10.0.0.0/12"), 32},
	{netip.MustParsePrefix("10.0.0.0/16"), 26},
	{netip.MustParsePrefix("2001:db8::/32"), 64},
	{netip.MustParsePrefix("2001:db8::/120"), 128},
}

func TestCoverageProperties(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 1))
		b := bases[int(seed)%len(bases)]
		in := genSet(r, b.base, 1+r.IntN(60), b.maxLen)
		out := Coverage(in)
		for _, a := range probeAddrs(r, b.base, in, out) {
			if covered(in, a) != covered(out, a) {
				t.Fatalf("seed %d: address %s covered by input %v, by output %v\ninput %v\noutput %v",
					seed, a, covered(in, a), covered(out, a), in, out)
			}
		}
		// Minimal: sorted, disjoint, no two mergeable siblings, never larger.
		if len(out) > len(in) {
			t.Fatalf("seed %d: %d outputs from %d inputs", seed, len(out), len(in))
		}
		for i := 1; i < len(out); i++ {
			if out[i-1].Overlaps(out[i]) || out[i-1].Addr().Compare(out[i].Addr()) >= 0 {
				t.Fatalf("seed %d: outputs %s and %s overlap or are unsorted", seed, out[i-1], out[i])
			}
			if _, ok := siblingParent(out[i-1], out[i]); ok {
				t.Fatalf("seed %d: outputs %s and %s should have been merged", seed, out[i-1], out[i])
			}
		}
	}
}

// matchedBy is the oracle: the route is matched by some input prefix with
// the options' length range.
func matchedBy(in []netip.Prefix, o RouteFilterOptions, route netip.Prefix) bool {
	for _, p := range in {
		if p.Addr().Is4() == route.Addr().Is4() && p.Bits() <= route.Bits() && route.Bits() <= o.le(p) && p.Contains(route.Addr()) {
			return true
		}
	}
	return false
}

func matchedByRanges(rs []Range, route netip.Prefix) bool {
	for _, r := range rs {
		if r.Matches(route) {
			return true
		}
	}
	return false
}

// probeRoutes: every input prefix, its parent, its two children, the host
// routes at its edges, and random routes.
func probeRoutes(r *rand.Rand, base netip.Prefix, in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range in {
		max := p.Addr().BitLen()
		out = append(out, p,
			netip.PrefixFrom(p.Addr(), max), netip.PrefixFrom(prefixtest.LastAddr(p), max))
		if p.Bits() > 0 {
			out = append(out, netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked())
		}
		if p.Bits() < max {
			lo, hi := halves(p)
			out = append(out, lo, hi)
		}
	}
	for range 500 {
		l := base.Bits() + r.IntN(base.Addr().BitLen()-base.Bits()+1)
		out = append(out, netip.PrefixFrom(prefixtest.RandomIn(r, base), l).Masked())
	}
	return out
}

func TestRouteFilterProperties(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 2))
		b := bases[int(seed)%len(bases)]
		in := genSet(r, b.base, 1+r.IntN(60), b.maxLen)
		opts := []RouteFilterOptions{
			{OrLonger: false},
			{OrLonger: true},
			{OrLonger: true, MaxLength4: 24, MaxLength6: 48},
			{OrLonger: true, MaxLength4: b.maxLen - 2, MaxLength6: b.maxLen - 2},
		}
		for _, o := range opts {
			rs := RouteFilter(in, o)
			if len(rs) > len(in) {
				t.Fatalf("seed %d %+v: %d entries from %d prefixes", seed, o, len(rs), len(in))
			}
			for _, e := range rs {
				if e.Ge < e.Prefix.Bits() || e.Le < e.Ge || e.Le > e.Prefix.Addr().BitLen() || e.Prefix != e.Prefix.Masked() {
					t.Fatalf("seed %d %+v: malformed entry %+v", seed, o, e)
				}
			}
			for _, route := range probeRoutes(r, b.base, in) {
				if want, got := matchedBy(in, o, route), matchedByRanges(rs, route); want != got {
					t.Fatalf("seed %d %+v: route %s matched by input %v, by entries %v\ninput %v\nentries %v",
						seed, o, route, want, got, in, rs)
				}
			}
		}
	}
}

func TestSubtractProperties(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 3))
		b := bases[int(seed)%len(bases)]
		set := genSet(r, b.base, 2+r.IntN(30), b.maxLen)
		p := set[0]
		holes := set[1:]
		out := Subtract(p, holes)
		for _, a := range probeAddrs(r, b.base, []netip.Prefix{p}, holes, out) {
			want := p.Contains(a) && !covered(holes, a)
			if got := covered(out, a); got != want {
				t.Fatalf("seed %d: %s: in %s minus holes = %v, in result = %v\nholes %v\nresult %v", seed, a, p, want, got, holes, out)
			}
		}
		for i, q := range out {
			if !(p.Bits() <= q.Bits() && p.Contains(q.Addr())) {
				t.Fatalf("seed %d: result %s outside %s", seed, q, p)
			}
			for _, q2 := range out[i+1:] {
				if q.Overlaps(q2) {
					t.Fatalf("seed %d: results %s and %s overlap", seed, q, q2)
				}
			}
		}
	}
}

// Table cases with known answers (bgpq4 -A behaviour, checked against
// bgpq4 1.9 on the same input).
func TestRouteFilterKnown(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	in := pp("193.0.0.0/21", "193.0.8.0/23", "193.0.10.0/23", "193.0.12.0/23", "193.0.22.0/23",
		"193.0.24.0/24", "193.0.25.0/24", "10.1.0.0/16")
	got := fmt.Sprint(RouteFilter(in, RouteFilterOptions{OrLonger: true}))
	// bgpq4 -A -R 32: 10.1.0.0/16 upto /32, 193.0.0.0/21 upto /32,
	// 193.0.8.0/22 /23-/32, 193.0.12.0/23 upto /32, 193.0.22.0/23 upto /32,
	// 193.0.24.0/23 /24-/32.
	want := "[10.1.0.0/16 le 32 193.0.0.0/21 le 32 193.0.8.0/22 ge 23 le 32 193.0.12.0/23 le 32 193.0.22.0/23 le 32 193.0.24.0/23 ge 24 le 32]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = fmt.Sprint(RouteFilter(in, RouteFilterOptions{}))
	want = "[10.1.0.0/16 193.0.0.0/21 193.0.8.0/22 ge 23 le 23 193.0.12.0/23 193.0.22.0/23 193.0.24.0/23 ge 24 le 24]"
	if got != want {
		t.Errorf("exact: got  %s\nwant %s", got, want)
	}
	if got := Coverage(in); !slices.Equal(got, pp("10.1.0.0/16", "193.0.0.0/21", "193.0.8.0/22", "193.0.12.0/23", "193.0.22.0/23", "193.0.24.0/23")) {
		t.Errorf("coverage %v", got)
	}
}

// random1M returns n random IPv4 prefixes with a realistic length mix
// (most /24, some /16-/23, few longer).
func randomPrefixes(n int) []netip.Prefix {
	r := rand.New(rand.NewPCG(42, 42))
	out := make([]netip.Prefix, n)
	for i := range out {
		var b [4]byte
		v := r.Uint32()
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		l := 24
		switch x := r.IntN(10); {
		case x < 2:
			l = 16 + r.IntN(8)
		case x == 9:
			l = 25 + r.IntN(8)
		}
		out[i] = netip.PrefixFrom(netip.AddrFrom4(b), l).Masked()
	}
	return out
}

// BenchmarkAggregate1M aggregates 1M random prefixes both ways (the
// `make bench` row "aggregate 1M prefixes").
func BenchmarkAggregate1M(b *testing.B) {
	in := randomPrefixes(1_000_000)
	b.Run("coverage", func(b *testing.B) {
		for b.Loop() {
			Coverage(in)
		}
	})
	b.Run("route-filter", func(b *testing.B) {
		for b.Loop() {
			RouteFilter(in, RouteFilterOptions{OrLonger: true})
		}
	})
}

// TestSetOverlapProperties: a Set answers what a pass over its list
// answers: the first prefix in the list that overlaps the query.
func TestSetOverlapProperties(t *testing.T) {
	linear := func(p netip.Prefix, list []netip.Prefix) (netip.Prefix, bool) {
		for _, q := range list {
			if p.Overlaps(q) {
				return q, true
			}
		}
		return netip.Prefix{}, false
	}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 4))
		b := bases[int(seed)%len(bases)]
		list := genSet(r, b.base, 1+r.IntN(40), b.maxLen)
		list = append(list, list[r.IntN(len(list))]) // a duplicate
		other := bases[(int(seed)+1)%len(bases)]
		list = append(list, genSet(r, other.base, 1+r.IntN(5), other.maxLen)...) // both families
		r.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		set := NewSet(list)
		for _, q := range append(probeRoutes(r, b.base, list), netip.Prefix{}) {
			wantP, want := linear(q, list)
			gotP, got := set.Overlap(q)
			if got != want || gotP != wantP {
				t.Fatalf("seed %d: %s: set says %s %v, the list %s %v\nlist %v", seed, q, gotP, got, wantP, want, list)
			}
		}
	}
	if _, ok := (*Set)(nil).Overlap(netip.MustParsePrefix("10.0.0.0/8")); ok {
		t.Error("a nil Set overlaps")
	}
	if why, ok := Bogon(netip.MustParsePrefix("192.0.2.128/25")); !ok || why != "overlaps bogon 192.0.2.0/24" {
		t.Errorf("192.0.2.128/25: %q %v", why, ok)
	}
	if why, ok := Bogon(netip.MustParsePrefix("192.0.0.0/16")); !ok || why != "overlaps bogon 192.0.0.0/24" {
		t.Errorf("192.0.0.0/16 (contains bogons): %q %v", why, ok)
	}
	if _, ok := Bogon(netip.MustParsePrefix("71.18.247.0/24")); ok {
		t.Error("71.18.247.0/24 is not a bogon")
	}
}

// TestSetConcurrentReads: the shared bogon set is read from many
// goroutines at once (policy and speaker); go test -race checks it.
func TestSetConcurrentReads(t *testing.T) {
	in := randomPrefixes(2000)
	want := make([]bool, len(in))
	for i, p := range in {
		_, want[i] = Bogon(p)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i, p := range in {
				if _, got := Bogon(p); got != want[i] {
					t.Errorf("%s: bogon %v, then %v", p, want[i], got)
				}
			}
		})
	}
	wg.Wait()
}
