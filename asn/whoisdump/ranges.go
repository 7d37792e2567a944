package whoisdump

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// parseRange turns an inetnum or inet6num key into its minimal CIDR cover.
// Accepted forms: a range "first - last" (RIPE, APNIC, AFRINIC), a prefix
// "a.b.c.d/n" or "x::/n", and LACNIC's abbreviated IPv4 prefix "a.b.c/n"
// (missing trailing octets are zero).
func parseRange(class, key string) ([]netip.Prefix, error) {
	key = strings.TrimSpace(key)
	v6 := class == "inet6num"
	if first, last, ok := strings.Cut(key, "-"); ok && !strings.Contains(key, "/") {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s %q: not a range of two addresses", class, key)
		}
		if a.Is6() != v6 || b.Is6() != v6 || a.Zone() != "" || b.Zone() != "" || a.Is4In6() || b.Is4In6() {
			return nil, fmt.Errorf("%s %q: wrong address family", class, key)
		}
		if b.Less(a) {
			return nil, fmt.Errorf("%s %q: range ends before it starts", class, key)
		}
		return netipx.IPRangeFrom(a, b).Prefixes(), nil
	}
	p, err := netip.ParsePrefix(key)
	if err != nil && !v6 {
		p, err = abbreviated(key)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: not a range or a prefix", class, key)
	}
	if p.Addr().Is6() != v6 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return nil, fmt.Errorf("%s %q: wrong address family", class, key)
	}
	if p.Masked() != p {
		return nil, fmt.Errorf("%s %q: host bits set (%s)", class, key, p.Masked())
	}
	return []netip.Prefix{p}, nil
}

// abbreviated parses "200.160/12" or "200.3.12/22": an IPv4 prefix whose
// trailing zero octets are left out, as LACNIC writes inetnum keys.
func abbreviated(s string) (netip.Prefix, error) {
	addr, bits, ok := strings.Cut(s, "/")
	parts := strings.Split(addr, ".")
	if !ok || len(parts) < 1 || len(parts) > 3 {
		return netip.Prefix{}, fmt.Errorf("not an abbreviated prefix")
	}
	var b [4]byte
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil || p == "" || len(p) > 1 && p[0] == '0' {
			return netip.Prefix{}, fmt.Errorf("not an abbreviated prefix")
		}
		b[i] = byte(v)
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 0 || n > 32 || bits != strconv.Itoa(n) {
		return netip.Prefix{}, fmt.Errorf("not an abbreviated prefix")
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), n), nil
}
