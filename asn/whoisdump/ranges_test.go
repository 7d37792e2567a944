package whoisdump

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"go4.org/netipx"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		class, key string
		want       []string
	}{
		{"inetnum", "202.6.91.0 - 202.6.91.255", []string{"202.6.91.0/24"}},
		{"inetnum", "203.168.160.0 - 203.168.255.255", []string{"203.168.160.0/19", "203.168.192.0/18"}},
		{"inetnum", "202.40.8.0-202.40.14.255", []string{"202.40.8.0/22", "202.40.12.0/23", "202.40.14.0/24"}},
		{"inetnum", "0.0.0.0 - 255.255.255.255", []string{"0.0.0.0/0"}},
		{"inetnum", "192.0.2.7 - 192.0.2.7", []string{"192.0.2.7/32"}},
		{"inetnum", "189.108.202.160/29", []string{"189.108.202.160/29"}}, // LACNIC
		{"inetnum", "200.160/12", []string{"200.160.0.0/12"}},             // LACNIC, abbreviated
		{"inetnum", "200.3.12/22", []string{"200.3.12.0/22"}},
		{"inet6num", "2a11:f2c0:ffcb::/48", []string{"2a11:f2c0:ffcb::/48"}},
		{"inet6num", "2001:db8:: - 2001:db8:0:1ff:ffff:ffff:ffff:ffff", []string{"2001:db8::/55"}},
		{"inet6num", "2001:db8:0:100:: - 2001:db8:0:2ff:ffff:ffff:ffff:ffff", []string{"2001:db8:0:100::/56", "2001:db8:0:200::/56"}},
	} {
		ps, err := parseRange(tc.class, tc.key)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: %v %v, want %v", tc.class, tc.key, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ class, key, want string }{
		{"inetnum", "202.8.32.255 - 202.8.32.0", "range ends before it starts"},
		{"inetnum", "202.8.32.0 - 202.8.32.256", "not a range of two addresses"},
		{"inetnum", "2001:db8:: - 2001:db8::1", "wrong address family"},
		{"inet6num", "2001:db8::/32 - x", "not a range or a prefix"},
		{"inet6num", "192.0.2.0/24", "wrong address family"},
		{"inet6num", "2001:db8::1/32", "host bits set"},
		{"inetnum", "192.0.2.1/24", "host bits set"},
		{"inetnum", "200.03/16", "not a range or a prefix"},
		{"inetnum", "", "not a range or a prefix"},
		{"inetnum", "AS1", "not a range or a prefix"},
	} {
		if _, err := parseRange(tc.class, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: %v, want %q", tc.class, tc.key, err, tc.want)
		}
	}
}

// TestRangeRoundTrip: ranges become CIDR covers and back exactly.
func TestRangeRoundTrip(t *testing.T) {
	for _, r := range [][2]string{
		{"1.0.0.0", "1.0.0.0"}, {"10.0.0.1", "10.0.3.254"}, {"203.168.160.0", "203.168.255.255"},
		{"0.0.0.0", "255.255.255.255"}, {"2001:db8::5", "2001:db8::1:0"},
	} {
		ps, err := parseRange(map[bool]string{false: "inetnum", true: "inet6num"}[strings.Contains(r[0], ":")], r[0]+" - "+r[1])
		if err != nil {
			t.Fatal(err)
		}
		var b netipx.IPSetBuilder
		for _, p := range ps {
			b.AddPrefix(p)
		}
		set, _ := b.IPSet()
		rs := set.Ranges()
		if len(rs) != 1 || rs[0].From() != netip.MustParseAddr(r[0]) || rs[0].To() != netip.MustParseAddr(r[1]) {
			t.Errorf("%v: %v -> %v", r, ps, rs)
		}
	}
}
