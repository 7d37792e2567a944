package bgp

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/field"
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
		{"no asn", func(c *Config) { c.ASN = 0 }, "asn: missing or 0"},
		{"router id v6", func(c *Config) { c.RouterID = "::1" }, "router_id: must be an IPv4 address"},
		// RFC 6286: the BGP identifier is a non-zero 32-bit number; peers
		// refuse 0.0.0.0 with "Bad BGP identifier".
		{"router id zero", func(c *Config) { c.RouterID = "0.0.0.0" }, "router_id: must not be 0.0.0.0"},
		{"listen port", func(c *Config) { c.Listen.Port = 70000 }, "listen.port: must be 0 (do not listen) to 65535"},
		{"bad family", func(c *Config) { c.Neighbors[0].Families = []string{"ipv5"} }, `neighbors[0].families[0]: unknown "ipv5"`},
		{"ttl without multihop", func(c *Config) { c.Neighbors[0].TTL = 2 }, "neighbors[0].ttl: ttl is the eBGP multihop TTL"},
		{"passive without listener", func(c *Config) { c.Neighbors[0].Passive = true }, "neighbors[0].passive: a passive neighbor must connect to us"},
		{"passive with listener", func(c *Config) { c.Neighbors[0].Passive = true; c.Listen.Port = 179 }, ""},
		{"ebgp rtbh", func(c *Config) { c.Neighbors[0].ASN = 65002 }, "neighbors[0].allow_ebgp: neighbor AS65002 is eBGP"},
		{"ebgp flowspec only", func(c *Config) { c.Neighbors[0].ASN = 65002; c.Neighbors[0].Announce = []string{"flowspec"} }, ""},
		{"unknown target", func(c *Config) { c.Neighbors[0].Targets = []string{"acme"} }, `neighbors[0].targets[0]: unknown target "acme"`},
		{"duplicate neighbor", func(c *Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, "neighbors[1].address: duplicate neighbor 10.0.0.2"},
		// An IPv4-mapped IPv6 address is the same neighbor.
		{"duplicate mapped neighbor", func(c *Config) {
			c.Neighbors = append(c.Neighbors, NeighborConfig{Address: "::ffff:10.0.0.2", ASN: 65001})
		}, "neighbors[1].address: duplicate neighbor 10.0.0.2"},
		// RFC 4271 4.2: a hold time of 1 or 2 seconds is refused by the
		// peer ("Unacceptable hold time"); 0 here means the default.
		{"hold time 1", func(c *Config) { c.Neighbors[0].HoldTime = 1 }, "neighbors[0].hold_time: must be 3-65535"},
		{"hold time 2", func(c *Config) { c.Neighbors[0].HoldTime = 2 }, "neighbors[0].hold_time: must be 3-65535"},
		{"hold time 3", func(c *Config) { c.Neighbors[0].HoldTime = 3 }, ""},
		{"hold time 65535", func(c *Config) { c.Neighbors[0].HoldTime = 65535 }, ""},
		{"hold time 65536", func(c *Config) { c.Neighbors[0].HoldTime = 65536 }, "neighbors[0].hold_time: must be 3-65535"},
		// RFC 4724: the restart time is 12 bits; 4096 went out as 0.
		{"restart time 4095", func(c *Config) { c.GracefulRestart.RestartTime = 4095 }, ""},
		{"restart time 4096", func(c *Config) { c.GracefulRestart.RestartTime = 4096 }, "graceful_restart.restart_time: must be 1-4095"},
		{"restart time 99999", func(c *Config) { c.GracefulRestart.RestartTime = 99999 }, "graceful_restart.restart_time: must be 1-4095"},
	}
	for _, tc := range cases {
		c := ok()
		tc.edit(&c)
		err := c.Validate([]string{"bytedance", "tencent"})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		var l field.List
		if err != nil && !errors.As(err, &l) {
			t.Errorf("%s: %v is not a field error", tc.name, err)
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
