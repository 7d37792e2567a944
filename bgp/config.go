package bgp

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/asfence/asfence/field"
)

// Config is the `bgp:` block: the embedded speaker and its neighbors.
type Config struct {
	ASN      uint32 `yaml:"asn"`
	RouterID string `yaml:"router_id"`
	Listen   struct {
		Address string `yaml:"address"`
		// Port 0 means "do not listen" (outbound sessions only).
		Port int `yaml:"port"`
	} `yaml:"listen"`
	GracefulRestart GracefulRestartConfig `yaml:"graceful_restart"`
	Neighbors       []NeighborConfig      `yaml:"neighbors"`
}

// GracefulRestartConfig: on by default, so that a restart of asfence never
// makes routers drop the block.
type GracefulRestartConfig struct {
	Enabled     *bool  `yaml:"enabled"`
	RestartTime uint32 `yaml:"restart_time"`
}

// NeighborConfig is one BGP session.
type NeighborConfig struct {
	Address      string `yaml:"address"`
	Port         int    `yaml:"port"`
	ASN          uint32 `yaml:"asn"`
	LocalAddress string `yaml:"local_address"`
	Passive      bool   `yaml:"passive"`
	Multihop     bool   `yaml:"multihop"`
	TTL          uint8  `yaml:"ttl"`
	Password     string `yaml:"password"`
	Description  string `yaml:"description"`
	// Announce selects what the neighbor gets: "blackhole" (RTBH unicast
	// routes) and/or "flowspec". Default: [blackhole].
	Announce []string `yaml:"announce"`
	// Targets limits the neighbor to these targets (default: all).
	Targets []string `yaml:"targets"`
	// Families lists the address families the session carries: "ipv4"
	// and/or "ipv6" (default: the neighbor address's family). One IPv4
	// session may carry both; RTBH next hops are explicit per family.
	Families []string `yaml:"families"`
	// AllowEBGP must be set for RTBH routes to go to an eBGP neighbor.
	AllowEBGP    bool   `yaml:"allow_ebgp"`
	HoldTime     uint64 `yaml:"hold_time"`
	ConnectRetry uint64 `yaml:"connect_retry"`
	// MaxPrefixes caps the routes the neighbor may send, per family
	// (default DefaultMaxPrefixes). The speaker ignores them, but GoBGP
	// keeps each in memory; past the cap the session is closed (Cease,
	// maximum number of prefixes reached) and opened again later.
	MaxPrefixes uint32 `yaml:"max_prefixes"`
	// Feed makes the neighbor a source for the live watch: it sends its
	// table (e.g. a route reflector's), which the speaker never selects
	// or re-advertises (see feed.go). It gets nothing announced unless
	// Announce is set; max_prefixes defaults to DefaultFeedMaxPrefixes.
	Feed bool `yaml:"feed"`
}

// BlackholeConfig is the `blackhole:` block (RTBH route attributes).
type BlackholeConfig struct {
	NextHopV4        string   `yaml:"next_hop_v4"`
	NextHopV6        string   `yaml:"next_hop_v6"`
	Communities      []string `yaml:"communities"`
	LargeCommunities []string `yaml:"large_communities"`
}

// FlowSpecConfig is the `flowspec:` block.
type FlowSpecConfig struct {
	// MaxRules caps the rules announced (default 2000); exceeding it fails
	// the apply and keeps what is announced.
	MaxRules int `yaml:"max_rules"`
	// Action: "discard" (traffic-rate 0, default), "rate-limit" (Rate bytes/s)
	// or "dscp" (remark to DSCP).
	Action string  `yaml:"action"`
	Rate   float32 `yaml:"rate"`
	DSCP   uint8   `yaml:"dscp"`
}

// Announce kinds.
const (
	AnnounceBlackhole = "blackhole"
	AnnounceFlowSpec  = "flowspec"
)

// Address families of a session.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// Default values.
const (
	DefaultNextHopV4 = "192.0.2.1"
	DefaultNextHopV6 = "100::1"
	DefaultMaxRules  = 2000
)

// MaxRestartTime is the largest graceful restart time: the field is 12
// bits wide (RFC 4724 3).
const MaxRestartTime = 4095

// Validate checks the bgp block. targets are the configured target names
// (nil: neighbors' targets lists are not checked). The error, if any, is a
// field.List with paths relative to the block ("neighbors[0].asn").
func (c *Config) Validate(targets []string) error {
	var p field.List
	if c.ASN == 0 {
		p.Add("asn", "missing or 0")
	}
	if a, err := netip.ParseAddr(c.RouterID); err != nil || !a.Is4() {
		p.Add("router_id", "must be an IPv4 address, got %q", c.RouterID)
	} else if a.IsUnspecified() {
		p.Add("router_id", "must not be 0.0.0.0: peers refuse a zero BGP identifier (RFC 6286)")
	}
	if c.Listen.Port < 0 || c.Listen.Port > 65535 {
		p.Add("listen.port", "must be 0 (do not listen) to 65535")
	}
	if c.Listen.Address != "" {
		if _, err := netip.ParseAddr(c.Listen.Address); err != nil {
			p.Add("listen.address", "invalid address %q", c.Listen.Address)
		}
	}
	if c.GracefulRestart.RestartTime > MaxRestartTime {
		p.Add("graceful_restart.restart_time", "must be 1-%d seconds (a 12-bit field in the OPEN; 0 or unset: %d), got %d",
			MaxRestartTime, DefaultRestartTime, c.GracefulRestart.RestartTime)
	}
	seen := map[netip.Addr]bool{}
	for i, n := range c.Neighbors {
		np := field.Path("neighbors", i)
		a, err := netip.ParseAddr(n.Address)
		// ::ffff:192.0.2.1 and 192.0.2.1 are one neighbor.
		a = a.Unmap()
		if err != nil {
			p.Add(field.Path(np, "address"), "invalid address %q", n.Address)
		} else if seen[a] {
			p.Add(field.Path(np, "address"), "duplicate neighbor %s", a)
		} else {
			seen[a] = true
		}
		if n.LocalAddress != "" {
			if _, err := netip.ParseAddr(n.LocalAddress); err != nil {
				p.Add(field.Path(np, "local_address"), "invalid address %q", n.LocalAddress)
			}
		}
		if n.Port < 0 || n.Port > 65535 {
			p.Add(field.Path(np, "port"), "must be 1-65535 (default 179)")
		}
		if n.TTL != 0 && !n.Multihop {
			p.Add(field.Path(np, "ttl"), "ttl is the eBGP multihop TTL: set multihop: true too")
		}
		if n.Passive && c.Listen.Port == 0 {
			p.Add(field.Path(np, "passive"), "a passive neighbor must connect to us: set bgp.listen.port")
		}
		for j, f := range n.Families {
			if f != FamilyIPv4 && f != FamilyIPv6 {
				p.Add(field.Path(np, "families", j), "unknown %q (use %s or %s)", f, FamilyIPv4, FamilyIPv6)
			}
		}
		if n.ASN == 0 {
			p.Add(field.Path(np, "asn"), "missing or 0")
		}
		for j, k := range n.Announce {
			if k != AnnounceBlackhole && k != AnnounceFlowSpec {
				p.Add(field.Path(np, "announce", j), "unknown %q (use %s or %s)", k, AnnounceBlackhole, AnnounceFlowSpec)
			}
		}
		// RFC 4271 4.2: a peer refuses a hold time of 1 or 2 seconds
		// ("Unacceptable hold time"); 0 here means the default.
		if n.HoldTime != 0 && (n.HoldTime < 3 || n.HoldTime > 65535) {
			p.Add(field.Path(np, "hold_time"), "must be 3-65535 seconds (RFC 4271; 0 or unset: %d), got %d", DefaultHoldTime, n.HoldTime)
		}
		if n.ASN != 0 && c.ASN != 0 && n.ASN != c.ASN && !n.AllowEBGP && slices.Contains(n.AnnounceKinds(), AnnounceBlackhole) {
			p.Add(field.Path(np, "allow_ebgp"), "neighbor AS%d is eBGP: RTBH routes go to eBGP neighbors only with allow_ebgp: true", n.ASN)
		}
		for j, t := range n.Targets {
			if targets != nil && !slices.Contains(targets, t) {
				p.Add(field.Path(np, "targets", j), "unknown target %q", t)
			}
		}
	}
	return p.Err()
}

// AddressFamilies returns the configured families, defaulting to the
// family of the neighbor's address.
func (n NeighborConfig) AddressFamilies() []string {
	if len(n.Families) > 0 {
		return n.Families
	}
	if a, err := netip.ParseAddr(n.Address); err == nil && a.Is6() && !a.Is4In6() {
		return []string{FamilyIPv6}
	}
	return []string{FamilyIPv4}
}

// AnnounceKinds returns the configured kinds, defaulting to blackhole
// (for a feed neighbor: nothing).
func (n NeighborConfig) AnnounceKinds() []string {
	if len(n.Announce) == 0 {
		if n.Feed {
			return nil
		}
		return []string{AnnounceBlackhole}
	}
	return n.Announce
}

// Validate checks the blackhole block; the error, if any, is a field.List.
func (c *BlackholeConfig) Validate() error {
	var p field.List
	if c.NextHopV4 != "" {
		if a, err := netip.ParseAddr(c.NextHopV4); err != nil || !a.Is4() {
			p.Add("next_hop_v4", "must be an IPv4 address, got %q", c.NextHopV4)
		}
	}
	if c.NextHopV6 != "" {
		if a, err := netip.ParseAddr(c.NextHopV6); err != nil || !a.Is6() || a.Is4In6() {
			p.Add("next_hop_v6", "must be an IPv6 address, got %q", c.NextHopV6)
		}
	}
	for i, s := range c.Communities {
		if _, err := ParseCommunity(s); err != nil {
			p.Add(field.Path("communities", i), "%v", err)
		}
	}
	for i, s := range c.LargeCommunities {
		if _, err := ParseLargeCommunity(s); err != nil {
			p.Add(field.Path("large_communities", i), "%v", err)
		}
	}
	return p.Err()
}

// Validate checks the flowspec block; the error, if any, is a field.List.
func (c *FlowSpecConfig) Validate() error {
	var p field.List
	if c.MaxRules < 0 {
		p.Add("max_rules", "must be positive")
	}
	switch c.Action {
	case "", "discard":
	case "rate-limit":
		if c.Rate <= 0 {
			p.Add("rate", "rate-limit needs a rate above 0 (bytes per second)")
		}
	case "dscp":
		if c.DSCP > 63 {
			p.Add("dscp", "must be 0-63")
		}
	default:
		p.Add("action", "unknown %q (use discard, rate-limit or dscp)", c.Action)
	}
	return p.Err()
}

// LargeCommunity is an RFC 8092 large community.
type LargeCommunity struct{ Global, Local1, Local2 uint32 }

func (l LargeCommunity) String() string { return fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2) }

// ParseCommunity parses "A:B" (RFC 1997) into its 32-bit value.
func ParseCommunity(s string) (uint32, error) {
	var a, b uint32
	var rest string
	n, _ := fmt.Sscanf(s, "%d:%d%s", &a, &b, &rest)
	if n != 2 || a > 65535 || b > 65535 || fmt.Sprintf("%d:%d", a, b) != s {
		return 0, fmt.Errorf("invalid community %q (want A:B with 0-65535 each)", s)
	}
	return a<<16 | b, nil
}

// ParseLargeCommunity parses "G:L1:L2".
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	var l LargeCommunity
	var rest string
	n, _ := fmt.Sscanf(s, "%d:%d:%d%s", &l.Global, &l.Local1, &l.Local2, &rest)
	if n != 3 || fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2) != s {
		return l, fmt.Errorf("invalid large community %q (want G:L1:L2, 32-bit each)", s)
	}
	return l, nil
}
