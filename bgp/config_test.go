package bgp

import (
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/internal/check"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := func() Config {
		return Config{ASN: 65001, RouterID: "10.0.0.1", Neighbors: []NeighborConfig{{Address: "10.0.0.2", ASN: 65001}}}
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no asn", func(c *Config) { c.ASN = 0 }, "bgp.asn: missing or 0"},
		{"router id v6", func(c *Config) { c.RouterID = "::1" }, "bgp.router_id: must be an IPv4 address"},
		{"listen port", func(c *Config) { c.Listen.Port = 70000 }, "bgp.listen.port: must be 0 (do not listen) to 65535"},
		{"bad family", func(c *Config) { c.Neighbors[0].Families = []string{"ipv5"} }, `bgp.neighbors[0].families[0]: unknown "ipv5"`},
		{"ttl without multihop", func(c *Config) { c.Neighbors[0].TTL = 2 }, "bgp.neighbors[0].ttl: ttl is the eBGP multihop TTL"},
		{"passive without listener", func(c *Config) { c.Neighbors[0].Passive = true }, "bgp.neighbors[0].passive: a passive neighbor must connect to us"},
		{"passive with listener", func(c *Config) { c.Neighbors[0].Passive = true; c.Listen.Port = 179 }, ""},
		{"ebgp rtbh", func(c *Config) { c.Neighbors[0].ASN = 65002 }, "bgp.neighbors[0].allow_ebgp: neighbor AS65002 is eBGP"},
		{"ebgp flowspec only", func(c *Config) { c.Neighbors[0].ASN = 65002; c.Neighbors[0].Announce = []string{"flowspec"} }, ""},
		{"unknown target", func(c *Config) { c.Neighbors[0].Targets = []string{"acme"} }, `bgp.neighbors[0].targets[0]: unknown target "acme"`},
		{"duplicate neighbor", func(c *Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, "bgp.neighbors[1].address: duplicate neighbor 10.0.0.2"},
	}
	for _, tc := range cases {
		c := ok()
		tc.edit(&c)
		var p check.Problems
		c.Validate("bgp", []string{"bytedance", "tencent"}, &p)
		got := check.Error(p.List()).Error()
		if tc.want == "" && !p.Empty() || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAddressFamiliesDefault(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string][]string{"192.0.2.1": {"ipv4"}, "2001:db8::1": {"ipv6"}} {
		if got := (NeighborConfig{Address: addr}).AddressFamilies(); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
	n := NeighborConfig{Address: "192.0.2.1", Families: []string{"ipv4", "ipv6"}, Announce: []string{"blackhole", "flowspec"}, ASN: 65001}
	var got []string
	for _, rf := range neighborFamilies(&Config{ASN: 65001}, n) {
		got = append(got, rf.String())
	}
	if want := []string{"ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"}; !slices.Equal(got, want) {
		t.Errorf("families %v, want %v", got, want)
	}
	// eBGP without allow_ebgp never negotiates unicast, whatever Validate said.
	n.ASN = 65002
	if fs := neighborFamilies(&Config{ASN: 65001}, n); len(fs) != 2 || fs[0].String() != "ipv4-flowspec" {
		t.Errorf("eBGP families %v", fs)
	}
}

func TestNewReportsFields(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Config: Config{ASN: 65001, RouterID: "10.0.0.1"},
		Blackhole: BlackholeConfig{NextHopV4: "100::1", Communities: []string{"65536:1"}},
		FlowSpec:  FlowSpecConfig{Action: "drop"}})
	for _, want := range []string{"blackhole.next_hop_v4", "blackhole.communities[0]", "flowspec.action"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want a problem at %s", err, want)
		}
	}
}
