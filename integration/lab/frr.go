package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FRRBgpd is FRR's BGP daemon; OpenBGPD's is also called bgpd.
const FRRBgpd = "/usr/lib/frr/bgpd"

// FRR is a running FRR bgpd (without zebra: nothing reaches the kernel and
// every next hop counts as reachable).
type FRR struct {
	daemon
	dir string
}

// StartFRR starts FRR's bgpd with one neighbor per session. Extra goes
// before "router bgp" (prefix lists, route-maps, AS-path lists). A session's
// Import/Export name route-maps; without Export nothing is sent (a deny-all
// route-map), so the daemon is a pure receiver by default.
func StartFRR(t testing.TB, cfg Config) *FRR {
	t.Helper()
	Require(t, FRRBgpd, "vtysh")
	cfg.fill(t)
	d := Dir(t)
	f := &FRR{daemon: daemon{cfg: cfg}, dir: d}
	conf := filepath.Join(d, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(f.config()), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	args := []string{"-f", conf, "-Z", "-S", "-P", "0", "-i", filepath.Join(d, "bgpd.pid"),
		"--vty_socket", d, "-l", cfg.Addr.String(), "-p", fmt.Sprint(cfg.Port)}
	if cfg.Addr6.IsValid() {
		args = append(args, "-l", cfg.Addr6.String())
	}
	if len(cfg.BMP) > 0 {
		args = append(args, "-M", "bmp")
	}
	cmd := command(cfg.Netns, FRRBgpd, args...)
	f.proc = start(t, "frr", cmd, filepath.Join(d, "bgpd.log"))
	f.waitReady(t, "frr", startTimeout, func(ctx context.Context) error {
		out, err := f.Cmd(ctx, "show bgp summary json")
		if err == nil && !strings.Contains(out, "{") {
			err = fmt.Errorf("frr: not ready: %q", out)
		}
		return err
	})
	return f
}

func (f *FRR) config() string {
	var w strings.Builder
	w.WriteString("hostname lab\n")
	if f.cfg.Debug {
		w.WriteString("log stdout debugging\ndebug bgp updates in\ndebug bgp graceful-restart\ndebug bgp neighbor-events\n")
	} else {
		w.WriteString("log stdout informational\n")
	}
	w.WriteString("route-map LAB-DENY deny 1\nexit\n")
	w.WriteString(f.cfg.Extra)
	w.WriteString("\n")
	fmt.Fprintf(&w, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n", f.cfg.ASN, f.cfg.RouterID)
	for _, s := range f.cfg.Sessions {
		n := s.Addr.String()
		fmt.Fprintf(&w, " neighbor %s remote-as %d\n neighbor %s port %d\n neighbor %s update-source %s\n neighbor %s timers connect 1\n",
			n, s.ASN, n, s.port(), n, f.cfg.local(s.Addr), n)
		if s.Description != "" {
			fmt.Fprintf(&w, " neighbor %s description %s\n", n, s.Description)
		}
		if s.Passive {
			fmt.Fprintf(&w, " neighbor %s passive\n", n)
		}
		if s.Addr.IsLoopback() && s.ASN != f.cfg.ASN {
			fmt.Fprintf(&w, " neighbor %s ebgp-multihop 255\n", n)
		}
	}
	afs := map[Family]string{IPv4Unicast: "ipv4 unicast", IPv6Unicast: "ipv6 unicast", IPv4FlowSpec: "ipv4 flowspec", IPv6FlowSpec: "ipv6 flowspec"}
	for _, fam := range AllFamilies {
		var body strings.Builder
		for _, s := range f.cfg.Sessions {
			for _, sf := range s.families() {
				if sf != fam {
					continue
				}
				n := s.Addr.String()
				fmt.Fprintf(&body, "  neighbor %s activate\n", n)
				if s.Import != "" {
					fmt.Fprintf(&body, "  neighbor %s route-map %s in\n", n, s.Import)
				}
				exp := "LAB-DENY"
				if s.Export != "" {
					exp = s.Export
				}
				if fam.Unicast() {
					fmt.Fprintf(&body, "  neighbor %s route-map %s out\n", n, exp)
					if len(f.cfg.BMP) > 0 {
						// FRR's BMP pre-policy reads the Adj-RIB-In, which
						// FRR keeps only with soft-reconfiguration inbound;
						// without it FRR reports every route as withdrawn
						// (FRR issue 10240, fixed after 10.5).
						fmt.Fprintf(&body, "  neighbor %s soft-reconfiguration inbound\n", n)
					}
				}
			}
		}
		if body.Len() > 0 {
			fmt.Fprintf(&w, " address-family %s\n%s exit-address-family\n", afs[fam], body.String())
		}
	}
	for i, b := range f.cfg.BMP {
		fmt.Fprintf(&w, " bmp targets lab%d\n  bmp connect %s port %d min-retry 100 max-retry 1000\n", i, b.Addr.Addr(), b.Addr.Port())
		for _, fam := range []string{"ipv4 unicast", "ipv6 unicast"} {
			for _, pol := range []string{"pre-policy", "post-policy"} {
				if p := b.policy(); p == pol || p == "both" {
					fmt.Fprintf(&w, "  bmp monitor %s %s\n", fam, pol)
				}
			}
		}
		w.WriteString(" exit\n")
	}
	w.WriteString("exit\n")
	return w.String()
}

// Name implements Peer.
func (f *FRR) Name() string { return "frr" }

// VtyDir is the directory of the vty socket (vtysh --vty_socket DIR).
func (f *FRR) VtyDir() string { return f.dir }

// Cmd runs one vtysh command and returns its output.
func (f *FRR) Cmd(ctx context.Context, command string) (string, error) {
	out, err := run(ctx, "", "vtysh", "--vty_socket", f.dir, "-c", command)
	return string(out), err
}

// JSON runs a vtysh command that prints JSON and decodes it into v.
func (f *FRR) JSON(ctx context.Context, command string, v any) error {
	out, err := f.Cmd(ctx, command)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("frr: %s: %v: %s", command, err, tail(out, 300))
	}
	return nil
}

// Session implements Peer: Ups is FRR's connectionsEstablished.
func (f *FRR) Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error) {
	var m map[string]struct {
		BGPState                   string `json:"bgpState"`
		BGPTimerUpEstablishedEpoch int64  `json:"bgpTimerUpEstablishedEpoch"`
		ConnectionsEstablished     int    `json:"connectionsEstablished"`
	}
	if err := f.JSON(ctx, "show bgp neighbors "+neighbor.String()+" json", &m); err != nil {
		return SessionInfo{}, err
	}
	n, ok := m[neighbor.String()]
	if !ok {
		return SessionInfo{}, fmt.Errorf("frr: %w %s", errNoSession, neighbor)
	}
	si := SessionInfo{State: n.BGPState, Established: n.BGPState == "Established", Ups: n.ConnectionsEstablished, Precision: time.Second}
	if n.BGPTimerUpEstablishedEpoch > 0 {
		si.Since = time.Unix(n.BGPTimerUpEstablishedEpoch, 0)
	}
	return si, nil
}

func frrAFI(f Family) string {
	switch f {
	case IPv6Unicast:
		return "ipv6 unicast"
	case IPv4FlowSpec:
		return "ipv4 flowspec"
	case IPv6FlowSpec:
		return "ipv6 flowspec"
	default:
		return "ipv4 unicast"
	}
}

// Count implements Peer: the prefixes accepted from all neighbors
// (summary pfxRcd), which is cheap.
func (f *FRR) Count(ctx context.Context, fam Family) (int, error) {
	var s struct {
		Peers map[string]struct {
			PfxRcd int `json:"pfxRcd"`
		} `json:"peers"`
	}
	if err := f.JSON(ctx, "show bgp "+frrAFI(fam)+" summary json", &s); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range s.Peers {
		n += p.PfxRcd
	}
	return n, nil
}

// Routes implements Peer.
func (f *FRR) Routes(ctx context.Context, fam Family) ([]Route, error) {
	if !fam.Unicast() {
		out, err := f.Cmd(ctx, "show bgp "+frrAFI(fam)+" detail")
		if err != nil {
			return nil, err
		}
		return parseFRRFlow(fam, out)
	}
	var tab struct {
		Routes map[string][]frrPath `json:"routes"`
	}
	if err := f.JSON(ctx, "show bgp "+frrAFI(fam)+" json detail", &tab); err != nil {
		return nil, err
	}
	var rs []Route
	for pfx, paths := range tab.Routes {
		p, err := netip.ParsePrefix(pfx)
		if err != nil {
			return nil, fmt.Errorf("frr: route %q: %v", pfx, err)
		}
		for _, fp := range paths {
			if len(fp.Nexthops) == 0 {
				continue // the entry's header: {"prefix": ..., "version": ...}
			}
			r := Route{Family: fam, Prefix: p}
			fp.fill(&r)
			rs = append(rs, r)
		}
	}
	return rs, nil
}

type frrPath struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	Community struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
}

func (fp frrPath) fill(r *Route) {
	for _, x := range strings.Fields(fp.ASPath.String) {
		var n uint32
		if _, err := fmt.Sscan(x, &n); err == nil {
			r.ASPath = append(r.ASPath, n)
		}
	}
	for _, c := range strings.Fields(fp.Community.String) {
		switch c {
		case "blackhole":
			c = "65535:666"
		case "no-export":
			c = "65535:65281"
		case "no-advertise":
			c = "65535:65282"
		case "local-AS":
			c = "65535:65283"
		case "no-peer":
			c = "65535:65284"
		case "graceful-shutdown":
			c = "65535:0"
		}
		r.Communities = append(r.Communities, c)
	}
	r.LargeCommunities = strings.Fields(fp.LargeCommunity.String)
	r.Communities = sortedUnique(r.Communities)
	r.LargeCommunities = sortedUnique(r.LargeCommunities)
	if len(fp.Nexthops) > 0 {
		r.NextHop, _ = netip.ParseAddr(fp.Nexthops[0].IP)
	}
}

// parseFRRFlow parses "show bgp ipv4 flowspec detail":
//
//	BGP flowspec entry: (flags 0x498)
//		Destination Address 20.0.1.0/24
//		Source Address 2a00:1::/32
//		FS:rate 0.000000
//		received for 00:00:03
//		not installed in PBR
func parseFRRFlow(fam Family, out string) ([]Route, error) {
	var rs []Route
	var cur *Route
	flush := func() {
		if cur != nil {
			rs = append(rs, *cur)
		}
		cur = nil
	}
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "BGP flowspec entry"):
			flush()
			cur = &Route{Family: fam, Flow: &Flow{}}
		case cur == nil:
		case strings.HasPrefix(l, "Destination Address "), strings.HasPrefix(l, "Source Address "):
			// IPv6 prefixes carry their offset: "2a00:1::/32/off 0".
			s, _, _ := strings.Cut(strings.Fields(l)[2], "/off")
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("frr: flowspec %q: %v", l, err)
			}
			if strings.HasPrefix(l, "Destination") {
				cur.Flow.Dst = p
			} else {
				cur.Flow.Src = p
			}
		case strings.HasPrefix(l, "FS:"):
			for _, a := range strings.Split(l, " FS:") {
				a = strings.TrimPrefix(a, "FS:")
				var rate float64
				var dscp int
				switch {
				case strings.HasPrefix(a, "rate "):
					if _, err := fmt.Sscanf(a, "rate %f", &rate); err == nil {
						if rate == 0 {
							cur.Actions = append(cur.Actions, "discard")
						} else {
							cur.Actions = append(cur.Actions, fmt.Sprintf("rate-limit:%g", rate))
						}
					}
				case strings.HasPrefix(a, "marking "):
					if _, err := fmt.Sscanf(a, "marking %d", &dscp); err == nil {
						cur.Actions = append(cur.Actions, fmt.Sprintf("dscp:%d", dscp))
					}
				default:
					cur.Actions = append(cur.Actions, a)
				}
			}
		case strings.HasPrefix(l, "Communities: "), strings.HasPrefix(l, "Large Community: "):
		case strings.Contains(l, ":") && !strings.Contains(l, " "):
		case strings.HasPrefix(l, "received for"), strings.HasPrefix(l, "not installed"), strings.HasPrefix(l, "installed in"):
		case cur.Flow != nil && l != "" && !strings.HasPrefix(l, "BGP") && !strings.HasPrefix(l, "Displayed"):
			cur.Flow.Other = append(cur.Flow.Other, l)
		}
	}
	flush()
	return rs, nil
}
