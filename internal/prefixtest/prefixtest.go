// Package prefixtest holds address arithmetic that tests of prefix sets
// need (random members, edges, siblings), shared by unit and integration
// tests.
package prefixtest

import (
	"math/rand/v2"
	"net/netip"
)

// setHostBits returns p's address with each host bit set by bit(i).
func setHostBits(p netip.Prefix, bit func() bool) netip.Addr {
	b := p.Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := p.Bits() + off; i < 128; i++ {
		if bit() {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// RandomIn is a random address inside p.
func RandomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	return setHostBits(p.Masked(), func() bool { return r.IntN(2) == 1 })
}

// LastAddr is the highest address of p.
func LastAddr(p netip.Prefix) netip.Addr {
	return setHostBits(p.Masked(), func() bool { return true })
}

// Sibling is the other half of p's parent (p must not be /0).
func Sibling(p netip.Prefix) netip.Prefix {
	b := p.Addr().As16()
	bit := p.Bits() - 1
	if p.Addr().Is4() {
		bit += 96
	}
	b[bit/8] ^= 0x80 >> (bit % 8)
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, p.Bits())
}
