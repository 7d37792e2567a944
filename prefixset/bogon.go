package prefixset

import "net/netip"

// bogons is built once and only read (a Set is safe for concurrent use).
var bogons = func() *Set {
	var out []netip.Prefix
	for _, s := range []string{
		// IPv4: RFC 6890 special-purpose, RFC 5737 documentation, multicast, reserved.
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		// IPv6: RFC 6890, RFC 3849 documentation, ULA, link-local, multicast,
		// discard-only, and everything outside 2000::/3 (checked separately).
		"::/8", "100::/64", "2001:2::/48", "2001:10::/28", "2001:db8::/32", "3fff::/20",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return NewSet(out)
}()

var global6 = netip.MustParsePrefix("2000::/3")

// Bogon says why p is a bogon, if it is one.
func Bogon(p netip.Prefix) (string, bool) {
	if p.Addr().Is6() && !(global6.Bits() <= p.Bits() && global6.Contains(p.Addr())) {
		return "outside global unicast " + global6.String(), true
	}
	if b, ok := bogons.Overlap(p); ok {
		return "overlaps bogon " + b.String(), true
	}
	return "", false
}
