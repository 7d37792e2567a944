package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/internal/bmp"
)

// BMP is the bmp: block: the BMP receiver (RFC 7854) the live watch reads
// routers' tables from. Without listen it is off.
type BMP struct {
	// Listen is address:port (e.g. 0.0.0.0:11019).
	Listen string `yaml:"listen"`
	// Routers, when set, are the only routers accepted; others are
	// refused and logged.
	Routers []string `yaml:"routers"`
	// MaxRoutesPerRouter drops a router that holds more routes (one per
	// peer and prefix; 0: bmp.bmp.DefaultMaxRoutesPerRouter).
	MaxRoutesPerRouter int `yaml:"max_routes_per_router"`
}

// Watch is the watch: block, the live guard of the live watch (on with
// bmp.listen or a feed neighbor).
type Watch struct {
	// MaxAdditions the watch applies without approval per Window (nil:
	// DefaultWatchMaxAdditions; 0: every batch is held).
	MaxAdditions *int          `yaml:"max_additions"`
	Window       time.Duration `yaml:"window"`
	// MinSources: routers/peers that must see a route (default 1).
	MinSources int `yaml:"min_sources"`
}

// Watch defaults.
const (
	DefaultWatchMaxAdditions = 100
	DefaultWatchWindow       = 10 * time.Minute
)

// Values returns the watch settings with defaults filled in.
func (w Watch) Values() (maxAdditions int, window time.Duration, minSources int) {
	maxAdditions, window, minSources = DefaultWatchMaxAdditions, DefaultWatchWindow, max(w.MinSources, 1)
	if w.MaxAdditions != nil {
		maxAdditions = *w.MaxAdditions
	}
	if w.Window != 0 {
		window = w.Window
	}
	return maxAdditions, window, minSources
}

// RouterAddrs returns bmp.routers parsed (valid after Load).
func (b *BMP) RouterAddrs() []netip.Addr {
	var out []netip.Addr
	for _, s := range b.Routers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// WatchOn reports whether the live watch runs: a BMP listener or a feed
// neighbor.
func (c *Config) WatchOn() bool {
	if c.BMP != nil && c.BMP.Listen != "" {
		return true
	}
	if c.BGP != nil {
		for _, n := range c.BGP.Neighbors {
			if n.Feed {
				return true
			}
		}
	}
	return false
}

func (c *Config) validateWatch(p *field.List) {
	if b := c.BMP; b != nil {
		if b.Listen != "" {
			host, port, err := net.SplitHostPort(b.Listen)
			if err != nil {
				p.Add(field.Path("bmp", "listen"), "%q: want address:port", b.Listen)
			} else if _, err := netip.ParseAddr(host); err != nil && host != "" {
				p.Add(field.Path("bmp", "listen"), "invalid address %q (use an IP address, or none for all)", host)
			} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.Add(field.Path("bmp", "listen"), "%q: the port must be 1-65535", b.Listen)
			}
		}
		seen := map[netip.Addr]bool{}
		for i, s := range b.Routers {
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				p.Add(field.Path("bmp", "routers", i), "invalid address %q", s)
			case seen[a.Unmap()]:
				p.Add(field.Path("bmp", "routers", i), "duplicate router %s", a.Unmap())
			default:
				seen[a.Unmap()] = true
			}
		}
		if b.MaxRoutesPerRouter < 0 {
			p.Add(field.Path("bmp", "max_routes_per_router"), "must not be negative (0 or unset: %d)", bmp.DefaultMaxRoutesPerRouter)
		}
	}
	if w := c.Watch.MaxAdditions; w != nil && *w < 0 {
		p.Add(field.Path("watch", "max_additions"), "must not be negative (0 holds every batch for approval)")
	}
	if c.Watch.Window < 0 || c.Watch.Window > 0 && c.Watch.Window < time.Second {
		p.Add(field.Path("watch", "window"), "must be at least 1s (unset: %s)", fmtDuration(DefaultWatchWindow))
	}
	if c.Watch.MinSources < 0 {
		p.Add(field.Path("watch", "min_sources"), "must not be negative")
	}
}
