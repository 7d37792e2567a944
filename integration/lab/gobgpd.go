package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GoBGPd is a running gobgpd (the Debian package, an older GoBGP than the
// library asfence embeds), read through its own gobgp CLI.
type GoBGPd struct {
	daemon
	dir     string
	apiPort int
}

// StartGoBGPd starts gobgpd with one neighbor per session; its gRPC API
// listens on Addr and a free port. Extra is appended to the TOML config.
func StartGoBGPd(t testing.TB, cfg Config) *GoBGPd {
	t.Helper()
	Require(t, "gobgpd", "gobgp")
	cfg.fill(t)
	d := Dir(t)
	g := &GoBGPd{daemon: daemon{cfg: cfg}, dir: d, apiPort: 50051}
	if cfg.Netns == "" {
		g.apiPort = FreePort(t, cfg.Addr)
	}
	conf := filepath.Join(d, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(g.config()), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	cmd := command(cfg.Netns, "gobgpd", "-f", conf, "-p", "--api-hosts", netip.AddrPortFrom(cfg.Addr, uint16(g.apiPort)).String(), "--pprof-disable")
	g.proc = start(t, "gobgpd", cmd, filepath.Join(d, "gobgpd.log"))
	g.waitReady(t, "gobgpd", startTimeout, func(ctx context.Context) error {
		_, err := g.Cmd(ctx, "global")
		return err
	})
	return g
}

func (g *GoBGPd) config() string {
	var w strings.Builder
	fmt.Fprintf(&w, "[global.config]\n  as = %d\n  router-id = %q\n  port = %d\n  local-address-list = [%q]\n",
		g.cfg.ASN, g.cfg.RouterID, g.cfg.Port, g.cfg.Addr)
	for _, s := range g.cfg.Sessions {
		fmt.Fprintf(&w, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", s.Addr, s.ASN)
		if s.Description != "" {
			fmt.Fprintf(&w, "    description = %q\n", s.Description)
		}
		fmt.Fprintf(&w, "  [neighbors.timers.config]\n    connect-retry = 1\n")
		fmt.Fprintf(&w, "  [neighbors.transport.config]\n    local-address = %q\n    remote-port = %d\n    passive-mode = %t\n", g.cfg.Addr, s.port(), s.Passive)
		if s.Addr.IsLoopback() && s.ASN != g.cfg.ASN {
			w.WriteString("  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 255\n")
		}
		for _, f := range s.families() {
			fmt.Fprintf(&w, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
		}
	}
	for _, b := range g.cfg.BMP {
		fmt.Fprintf(&w, "\n[[bmp-servers]]\n  [bmp-servers.config]\n    address = %q\n    port = %d\n    route-monitoring-policy = %q\n",
			b.Addr.Addr(), b.Addr.Port(), b.policy())
		if b.Name != "" {
			fmt.Fprintf(&w, "    sys-name = %q\n", b.Name)
		}
	}
	w.WriteString(g.cfg.Extra)
	return w.String()
}

// Name implements Peer.
func (g *GoBGPd) Name() string { return "gobgpd" }

// Cmd runs the gobgp CLI against this daemon.
func (g *GoBGPd) Cmd(ctx context.Context, args ...string) (string, error) {
	out, err := run(ctx, g.cfg.Netns, "gobgp", append([]string{"-u", g.cfg.Addr.String(), "-p", strconv.Itoa(g.apiPort)}, args...)...)
	return string(out), err
}

// API is the address of gobgpd's gRPC API (gobgp -u ADDR -p PORT), for
// commands that take longer than Cmd allows (an MRT injection).
func (g *GoBGPd) API() netip.AddrPort { return netip.AddrPortFrom(g.cfg.Addr, uint16(g.apiPort)) }

// Session implements Peer: Since is the session's uptime stamp, Ups is
// the number of flops + 1 while established.
func (g *GoBGPd) Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error) {
	out, err := g.Cmd(ctx, "neighbor", neighbor.String(), "-j")
	if err != nil {
		return SessionInfo{}, err
	}
	var n struct {
		State struct {
			SessionState any `json:"session_state"`
			Flops        int `json:"flops"`
		} `json:"state"`
		Timers struct {
			State struct {
				Uptime any `json:"uptime"`
			} `json:"state"`
		} `json:"timers"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		return SessionInfo{}, fmt.Errorf("gobgpd: neighbor %s: %v: %s", neighbor, err, tail(out, 300))
	}
	si := SessionInfo{State: fmt.Sprint(n.State.SessionState), Ups: -1, Precision: time.Second}
	// 3.10 prints the enum as a number (6 = established) or a name.
	si.Established = si.State == "6" || strings.EqualFold(si.State, "established")
	if si.Established {
		si.Ups = n.State.Flops + 1
	}
	switch u := n.Timers.State.Uptime.(type) {
	case float64:
		si.Since = time.Unix(int64(u), 0)
	case map[string]any:
		if s, ok := u["seconds"].(float64); ok {
			si.Since = time.Unix(int64(s), 0)
		}
	}
	return si, nil
}

var gobgpSummaryRE = regexp.MustCompile(`Destination:\s*(\d+)`)

// Count implements Peer: destinations in the global RIB.
func (g *GoBGPd) Count(ctx context.Context, f Family) (int, error) {
	out, err := g.Cmd(ctx, "global", "rib", "-a", gobgpCLIFamily(f), "summary")
	if err != nil {
		return 0, err
	}
	m := gobgpSummaryRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("gobgpd: no count in %q", out)
	}
	return atoi(m[1])
}

// Routes implements Peer.
func (g *GoBGPd) Routes(ctx context.Context, f Family) ([]Route, error) {
	out, err := g.Cmd(ctx, "global", "rib", "-a", gobgpCLIFamily(f), "-j")
	if err != nil {
		return nil, err
	}
	var tab map[string][]struct {
		Nlri  json.RawMessage   `json:"nlri"`
		Attrs []json.RawMessage `json:"attrs"`
	}
	if err := json.Unmarshal([]byte(out), &tab); err != nil {
		return nil, fmt.Errorf("gobgpd: rib %s: %v: %s", f, err, tail(out, 300))
	}
	var rs []Route
	for key, paths := range tab {
		for _, p := range paths {
			r := Route{Family: f}
			if f.Unicast() {
				pf, err := netip.ParsePrefix(key)
				if err != nil {
					return nil, fmt.Errorf("gobgpd: route %q: %v", key, err)
				}
				r.Prefix = pf
			} else {
				fl, err := parseGoBGPFlow(key)
				if err != nil {
					return nil, err
				}
				r.Flow = fl
			}
			for _, a := range p.Attrs {
				if err := gobgpAttr(a, &r); err != nil {
					return nil, err
				}
			}
			r.Communities = sortedUnique(r.Communities)
			r.LargeCommunities = sortedUnique(r.LargeCommunities)
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// parseGoBGPFlow parses "[destination: 20.0.1.0/24][source: 10.0.0.0/8]";
// IPv6 prefixes carry an offset: "[destination: 2a00:1::/32/0]".
func parseGoBGPFlow(s string) (*Flow, error) {
	fl := &Flow{}
	for _, part := range strings.Split(strings.Trim(s, "[]"), "][") {
		k, v, _ := strings.Cut(part, ": ")
		switch k {
		case "destination", "source":
			pfx := v
			if strings.Count(v, "/") == 2 {
				pfx = v[:strings.LastIndex(v, "/")]
			}
			p, err := netip.ParsePrefix(pfx)
			if err != nil {
				return nil, fmt.Errorf("gobgpd: flow %q: %v", s, err)
			}
			if k == "destination" {
				fl.Dst = p
			} else {
				fl.Src = p
			}
		default:
			fl.Other = append(fl.Other, part)
		}
	}
	return fl, nil
}

// gobgpAttr decodes one attribute of the CLI's JSON.
func gobgpAttr(raw json.RawMessage, r *Route) error {
	var a struct {
		Type        int             `json:"type"`
		NextHop     string          `json:"nexthop"`
		Value       json.RawMessage `json:"value"`
		Communities []uint32        `json:"communities"`
		ASPaths     []struct {
			ASNs []uint32 `json:"asns"`
		} `json:"as_paths"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("gobgpd: attribute %s: %v", raw, err)
	}
	switch a.Type {
	case 2: // AS_PATH
		for _, seg := range a.ASPaths {
			r.ASPath = append(r.ASPath, seg.ASNs...)
		}
	case 3: // NEXT_HOP
		r.NextHop, _ = netip.ParseAddr(a.NextHop)
	case 14: // MP_REACH_NLRI
		if a.NextHop != "" && a.NextHop != "0.0.0.0" && a.NextHop != "::" {
			r.NextHop, _ = netip.ParseAddr(a.NextHop)
		}
	case 8: // COMMUNITIES
		for _, c := range a.Communities {
			r.Communities = append(r.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
		}
	case 16: // EXTENDED_COMMUNITIES
		var es []map[string]any
		if err := json.Unmarshal(a.Value, &es); err != nil {
			return fmt.Errorf("gobgpd: extended communities %s: %v", a.Value, err)
		}
		for _, e := range es {
			r.Actions = append(r.Actions, gobgpAction(e))
		}
	case 32: // LARGE_COMMUNITY
		var ls []struct {
			ASN        uint32 `json:"ASN"`
			LocalData1 uint32 `json:"LocalData1"`
			LocalData2 uint32 `json:"LocalData2"`
		}
		if err := json.Unmarshal(a.Value, &ls); err != nil {
			return fmt.Errorf("gobgpd: large communities %s: %v", a.Value, err)
		}
		for _, l := range ls {
			r.LargeCommunities = append(r.LargeCommunities, fmt.Sprintf("%d:%d:%d", l.ASN, l.LocalData1, l.LocalData2))
		}
	}
	return nil
}

// gobgpAction normalises a FlowSpec extended community from the CLI's JSON
// (type 0x80 subtype 0x06 traffic-rate, 0x09 traffic-marking).
func gobgpAction(e map[string]any) string {
	num := func(k string) float64 { f, _ := e[k].(float64); return f }
	switch {
	case num("type") == 0x80 && num("subtype") == 0x06:
		if num("rate") == 0 {
			return "discard"
		}
		return "rate-limit:" + strconv.FormatFloat(num("rate"), 'f', -1, 32)
	case num("type") == 0x80 && num("subtype") == 0x09:
		return fmt.Sprintf("dscp:%d", int(num("value")))
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// gobgpCLIFamily is the CLI's name for f ("ipv4", "ipv6-flowspec", ...).
func gobgpCLIFamily(f Family) string { return strings.TrimSuffix(string(f), "-unicast") }
