package prefixset

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Size and Intersect against counting addresses one by one, on random
// overlapping prefixes inside 10.0.0.0/20 (lengths /21 to /32).
func TestSizeAndIntersectExhaustive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for range n {
			a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(16)), byte(r.IntN(256))})
			out = append(out, netip.PrefixFrom(a, 21+r.IntN(12)).Masked())
		}
		return out
	}
	in := func(ps []netip.Prefix, a netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for round := range 50 {
		a, b := random(1+r.IntN(30)), random(1+r.IntN(30))
		var na, nboth uint64
		both := Intersect(a, b)
		for i := range 1 << 12 {
			addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			inA, inB := in(a, addr), in(b, addr)
			if inA {
				na++
			}
			if inA && inB {
				nboth++
			}
			if in(both, addr) != (inA && inB) {
				t.Fatalf("round %d: %s: in the intersection %v, in a %v, in b %v", round, addr, in(both, addr), inA, inB)
			}
		}
		if v4, v6 := Size(a); v4 != na || v6 != 0 {
			t.Fatalf("round %d: Size %d, %d; counted %d", round, v4, v6, na)
		}
		if v4, _ := Size(both); v4 != nboth {
			t.Fatalf("round %d: Size of the intersection %d, counted %d", round, v4, nboth)
		}
	}
}

func TestSizeIPv6Units(t *testing.T) {
	ps := []netip.Prefix{
		netip.MustParsePrefix("2001:db8::/32"),       // 65536 /48s
		netip.MustParsePrefix("2001:db8:1::/48"),     // inside it
		netip.MustParsePrefix("2400:1::/64"),         // one /48
		netip.MustParsePrefix("2400:1:0:1::/64"),     // the same /48
		netip.MustParsePrefix("2400:2::/56"),         // another
		netip.MustParsePrefix("192.0.2.0/24"),        // 256 addresses
		netip.MustParsePrefix("192.0.2.128/25"),      // inside it
		netip.MustParsePrefix("::/0"),                // 2^48 /48s
		netip.MustParsePrefix("2001:db8:ffff::/127"), // inside 2001:db8::/32
	}
	v4, v6 := Size(ps)
	if v4 != 256 || v6 != 1<<48 {
		t.Errorf("Size = %d, %d", v4, v6)
	}
	v4, v6 = Size(ps[:7])
	if v4 != 256 || v6 != 65536+2 {
		t.Errorf("Size = %d, %d; want 256, %d", v4, v6, 65536+2)
	}
}
