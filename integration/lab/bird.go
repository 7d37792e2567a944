package lab

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BIRD is a running BIRD 2 daemon.
type BIRD struct {
	daemon
	dir  string
	sock string
}

// BIRDDiscardStatics is BIRD config that makes the default RTBH next hops
// (192.0.2.1, 100::1) resolve to blackhole routes; put it in Config.Extra.
const BIRDDiscardStatics = `protocol static discard4 { ipv4; route 192.0.2.1/32 blackhole; }
protocol static discard6 { ipv6; route 100::1/128 blackhole; }
`

// StartBIRD starts BIRD with one "protocol bgp peerN" per session (N is the
// session's index) and the tables master4, master6, flowtab4, flowtab6.
// Unicast channels use "gateway recursive", so a discard next hop is kept
// even on a direct eBGP session. Loopback sessions are multihop. Extra goes
// before the protocols (filters, functions, static protocols). Nothing is
// written to the kernel.
func StartBIRD(t testing.TB, cfg Config) *BIRD {
	t.Helper()
	Require(t, "bird", "birdc")
	cfg.fill(t)
	d := Dir(t)
	b := &BIRD{daemon: daemon{cfg: cfg}, dir: d, sock: filepath.Join(d, "bird.ctl")}
	conf := filepath.Join(d, "bird.conf")
	if err := os.WriteFile(conf, []byte(b.config()), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	timeout := startTimeout
	if cfg.StartTimeout > 0 {
		timeout = cfg.StartTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	out, err := exec.CommandContext(ctx, "bird", "-p", "-c", conf).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("lab: bird config rejected: %v\n%s", err, out)
	}
	cmd := command(cfg.Netns, "bird", "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(d, "bird.pid"))
	b.proc = start(t, "bird", cmd, filepath.Join(d, "bird.log"))
	b.waitReady(t, "bird", timeout, func(ctx context.Context) error {
		_, err := b.Cmd(ctx, "show", "status")
		return err
	})
	return b
}

func (b *BIRD) config() string {
	var w strings.Builder
	fmt.Fprintf(&w, "router id %s;\nlog stderr all;\n", b.cfg.RouterID)
	w.WriteString("timeformat protocol iso long us;\ntimeformat route iso long us;\n")
	w.WriteString("protocol device { }\nflow4 table flowtab4;\nflow6 table flowtab6;\n")
	w.WriteString(b.cfg.Extra)
	w.WriteString("\n")
	for i, s := range b.cfg.Sessions {
		fmt.Fprintf(&w, "protocol bgp peer%d {\n", i)
		if s.Description != "" {
			fmt.Fprintf(&w, "  description %q;\n", s.Description)
		}
		fmt.Fprintf(&w, "  local %s port %d as %d;\n", b.cfg.local(s.Addr), b.cfg.Port, b.cfg.ASN)
		fmt.Fprintf(&w, "  neighbor %s port %d as %d;\n", s.Addr, s.port(), s.ASN)
		if s.Addr.IsLoopback() {
			w.WriteString("  multihop;\n")
		}
		// Without it BIRD listens on every address: parallel daemons on
		// other 127.x addresses (and their free ports) would collide.
		w.WriteString("  strict bind on;\n")
		if s.Passive {
			w.WriteString("  passive on;\n")
		}
		w.WriteString("  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 5;\n")
		if b.cfg.Debug {
			w.WriteString("  debug { states, routes, events };\n")
		}
		if s.Options != "" {
			fmt.Fprintf(&w, "  %s\n", s.Options)
		}
		imp, exp := "all", "none"
		if s.Import != "" {
			imp = s.Import
		}
		if s.Export != "" {
			exp = s.Export
		}
		for _, f := range s.families() {
			switch f {
			case IPv4Unicast:
				fmt.Fprintf(&w, "  ipv4 { import %s; export %s; gateway recursive; };\n", imp, exp)
			case IPv6Unicast:
				fmt.Fprintf(&w, "  ipv6 { import %s; export %s; gateway recursive; };\n", imp, exp)
			case IPv4FlowSpec:
				fmt.Fprintf(&w, "  flow4 { table flowtab4; import %s; export %s; };\n", imp, exp)
			case IPv6FlowSpec:
				fmt.Fprintf(&w, "  flow6 { table flowtab6; import %s; export %s; };\n", imp, exp)
			}
		}
		w.WriteString("}\n")
	}
	return w.String()
}

// Name implements Peer.
func (b *BIRD) Name() string { return "bird" }

// Socket is the control socket (for birdc -s).
func (b *BIRD) Socket() string { return b.sock }

// Cmd runs a birdc command and returns its output.
func (b *BIRD) Cmd(ctx context.Context, args ...string) (string, error) {
	out, err := run(ctx, "", "birdc", append([]string{"-s", b.sock}, args...)...)
	return string(out), err
}

// Configure makes BIRD load a new config file (birdc configure "file").
func (b *BIRD) Configure(ctx context.Context, conf string) error {
	out, err := b.Cmd(ctx, "configure", strconv.Quote(conf))
	if err == nil && !strings.Contains(out, "Reconfigured") && !strings.Contains(out, "Reconfiguration in progress") {
		err = fmt.Errorf("bird: configure %s: %s", conf, out)
	}
	return err
}

func (b *BIRD) sessionName(neighbor netip.Addr) (string, error) {
	for i, s := range b.cfg.Sessions {
		if s.Addr == neighbor {
			return fmt.Sprintf("peer%d", i), nil
		}
	}
	return "", fmt.Errorf("bird: %w %s", errNoSession, neighbor)
}

// Session implements Peer. Since is when BIRD's protocol changed state.
// BIRD does not count sessions: Ups is -1.
func (b *BIRD) Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error) {
	name, err := b.sessionName(neighbor)
	if err != nil {
		return SessionInfo{}, err
	}
	out, err := b.Cmd(ctx, "show", "protocols", name)
	if err != nil {
		return SessionInfo{}, err
	}
	// peer0      BGP        ---        up     2024-05-01 12:00:00.123456  Established
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == name {
			// BIRD converts its monotonic stamp to wall time on each call,
			// from clocks it caches per event-loop pass: on a loaded machine
			// two readings of one session differ by tens of milliseconds
			// (42 ms seen). A reset takes at least a second.
			si := SessionInfo{State: strings.Join(f[6:], " "), Ups: -1, Precision: 500 * time.Millisecond}
			si.Since, _ = time.ParseInLocation("2006-01-02 15:04:05.999999", f[4]+" "+f[5], time.Local)
			si.Established = si.State == "Established"
			return si, nil
		}
	}
	return SessionInfo{}, fmt.Errorf("bird: no protocol %s in %q", name, out)
}

func birdTable(f Family) string {
	switch f {
	case IPv6Unicast:
		return "master6"
	case IPv4FlowSpec:
		return "flowtab4"
	case IPv6FlowSpec:
		return "flowtab6"
	default:
		return "master4"
	}
}

var birdCountRE = regexp.MustCompile(`(\d+) of \d+ routes`)

// Count implements Peer: BGP routes in the family's table.
func (b *BIRD) Count(ctx context.Context, f Family) (int, error) {
	out, err := b.Cmd(ctx, "show", "route", "table", birdTable(f), "where", "source = RTS_BGP", "count")
	if err != nil {
		return 0, err
	}
	m := birdCountRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("bird: no count in %q", out)
	}
	return atoi(m[1])
}

// Routes implements Peer: BGP routes in the family's table, with attributes.
func (b *BIRD) Routes(ctx context.Context, f Family) ([]Route, error) {
	out, err := b.Cmd(ctx, "show", "route", "table", birdTable(f), "where", "source = RTS_BGP", "all")
	if err != nil {
		return nil, err
	}
	return parseBIRDRoutes(f, out)
}

var (
	birdCommRE  = regexp.MustCompile(`\((\d+),\s*(\d+)\)`)
	birdLargeRE = regexp.MustCompile(`\((\d+),\s*(\d+),\s*(\d+)\)`)
	birdExtRE   = regexp.MustCompile(`\(([^()]*)\)`)
)

// parseBIRDRoutes parses "show route all" output. A route starts with a
// network (or a flow4/flow6 { ... } block) at the start of a line, or with
// leading blanks for further routes of the same network; attribute lines
// are indented "Key: value".
func parseBIRDRoutes(f Family, out string) ([]Route, error) {
	var routes []Route
	var cur *Route
	var network string
	flush := func() {
		if cur != nil {
			cur.Communities = sortedUnique(cur.Communities)
			cur.LargeCommunities = sortedUnique(cur.LargeCommunities)
			routes = append(routes, *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(line, "BIRD ") || strings.HasPrefix(line, "Table "):
			continue
		case strings.Contains(line, " [") && (line[0] != ' ' && line[0] != '\t' || !strings.Contains(trimmed, ": ")):
			// A route line: "NET  unicast [peer0 ...] * (100) [AS65001i]" or
			// a continuation "  unicast [peer1 ...]" for the same network.
			flush()
			if line[0] != ' ' && line[0] != '\t' {
				network = routeNetwork(line)
			}
			r, err := birdRoute(f, network)
			if err != nil {
				return nil, err
			}
			cur = &r
		case cur != nil && strings.Contains(trimmed, ": "):
			k, v, _ := strings.Cut(trimmed, ": ")
			switch k {
			case "BGP.next_hop":
				if a, err := netip.ParseAddr(strings.Fields(v)[0]); err == nil {
					cur.NextHop = a
				}
			case "BGP.as_path":
				for _, x := range strings.Fields(v) {
					if n, err := strconv.ParseUint(strings.Trim(x, "{}"), 10, 32); err == nil {
						cur.ASPath = append(cur.ASPath, uint32(n))
					}
				}
			case "BGP.community":
				for _, m := range birdCommRE.FindAllStringSubmatch(v, -1) {
					cur.Communities = append(cur.Communities, m[1]+":"+m[2])
				}
			case "BGP.large_community":
				for _, m := range birdLargeRE.FindAllStringSubmatch(v, -1) {
					cur.LargeCommunities = append(cur.LargeCommunities, m[1]+":"+m[2]+":"+m[3])
				}
			case "BGP.ext_community":
				for _, m := range birdExtRE.FindAllStringSubmatch(v, -1) {
					cur.Actions = append(cur.Actions, birdAction(m[1]))
				}
			}
		}
	}
	flush()
	return routes, sc.Err()
}

// routeNetwork returns the network at the start of a route line: a prefix,
// or a whole "flow4 { ... }" block.
func routeNetwork(line string) string {
	if strings.HasPrefix(line, "flow") {
		if i := strings.Index(line, "}"); i >= 0 {
			return line[:i+1]
		}
	}
	return strings.Fields(line)[0]
}

var birdFlowRE = regexp.MustCompile(`^flow[46] \{(.*)\}$`)

func birdRoute(f Family, network string) (Route, error) {
	r := Route{Family: f}
	if m := birdFlowRE.FindStringSubmatch(network); m != nil {
		fl := &Flow{}
		for _, part := range strings.Split(m[1], ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), " ")
			switch k {
			case "":
			case "dst", "src":
				// BIRD prints a v6 offset as "2001:db8::/32 offset 0"; a zero offset is omitted.
				p, err := netip.ParsePrefix(strings.Fields(v)[0])
				if err != nil {
					return r, fmt.Errorf("bird: flow %q: %v", network, err)
				}
				if k == "dst" {
					fl.Dst = p
				} else {
					fl.Src = p
				}
			default:
				fl.Other = append(fl.Other, strings.TrimSpace(part))
			}
		}
		r.Flow = fl
		return r, nil
	}
	p, err := netip.ParsePrefix(network)
	if err != nil {
		return r, fmt.Errorf("bird: route %q: %v", network, err)
	}
	r.Prefix = p
	return r, nil
}

// birdAction normalises a BIRD extended community: (generic, 0x80060000, 0x0)
// is traffic-rate with a float rate in the low word; 0x80090000 is
// traffic-marking (DSCP in the last byte).
func birdAction(s string) string {
	parts := strings.Split(s, ",")
	if len(parts) != 3 || strings.TrimSpace(parts[0]) != "generic" {
		return s
	}
	hi, err1 := strconv.ParseUint(strings.TrimSpace(parts[1]), 0, 32)
	lo, err2 := strconv.ParseUint(strings.TrimSpace(parts[2]), 0, 32)
	if err1 != nil || err2 != nil {
		return s
	}
	return extAction(uint64(hi)<<32 | lo)
}

// extAction names a FlowSpec action from the 64-bit extended community.
func extAction(v uint64) string {
	typ := v >> 48
	switch typ {
	case 0x8006: // traffic-rate: 2 bytes AS, 4 bytes IEEE float
		rate := math.Float32frombits(uint32(v))
		if rate == 0 {
			return "discard"
		}
		return "rate-limit:" + strconv.FormatFloat(float64(rate), 'f', -1, 32)
	case 0x8009: // traffic-marking
		return fmt.Sprintf("dscp:%d", v&0x3f)
	}
	return fmt.Sprintf("ext:0x%016x", v)
}

// ChannelStats are BIRD's counters for one channel of a session.
type ChannelStats struct {
	// Imported routes now held from the neighbor.
	Imported int
	// ImportUpdates and ImportWithdraws count the routes (NLRIs) received
	// in announcements and withdrawals since the session came up.
	ImportUpdates, ImportWithdraws int
}

// ChannelStats reads "show protocols all" for the session with neighbor.
func (b *BIRD) ChannelStats(ctx context.Context, neighbor netip.Addr, f Family) (ChannelStats, error) {
	name, err := b.sessionName(neighbor)
	if err != nil {
		return ChannelStats{}, err
	}
	out, err := b.Cmd(ctx, "show", "protocols", "all", name)
	if err != nil {
		return ChannelStats{}, err
	}
	channel := map[Family]string{IPv4Unicast: "ipv4", IPv6Unicast: "ipv6", IPv4FlowSpec: "flow4", IPv6FlowSpec: "flow6"}[f]
	var st ChannelStats
	in, found := false, false
	for _, line := range strings.Split(out, "\n") {
		fl := strings.Fields(line)
		switch {
		case len(fl) == 2 && fl[0] == "Channel":
			in = fl[1] == channel
			found = found || in
		case !in || len(fl) < 3:
		case fl[0] == "Routes:":
			st.Imported, _ = atoi(fl[1])
		case fl[0] == "Import" && fl[1] == "updates:":
			st.ImportUpdates, _ = atoi(fl[2])
		case fl[0] == "Import" && fl[1] == "withdraws:":
			st.ImportWithdraws, _ = atoi(fl[2])
		}
	}
	if !found {
		return st, fmt.Errorf("bird: no channel %s on %s: %s", channel, name, tail(out, 300))
	}
	return st, nil
}
