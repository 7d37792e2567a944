package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// The end-to-end scenarios run on the containerlab topology users deploy
// (containerlab/asfence.clab.yml), built here in network namespaces with
// its node configs unchanged: asfence resolves from the lab's registry
// node and announces RTBH to the FRR edge and FlowSpec to BIRD; traffic
// from the client host crosses the edge's kernel to the servers behind
// the upstream. Each scenario has a lab of its own and runs in parallel.

const clabFile = "containerlab/asfence.clab.yml"

// Addresses of the topology (see the file's comments).
var (
	clabAsfence   = netip.MustParseAddr("10.0.1.1")
	clabUpstream  = netip.MustParseAddr("10.0.3.1")
	clabClient    = "10.0.10.2"
	targetP       = "71.18.12.10"      // in 71.18.12.0/24: registry has it from the start
	targetQ       = "71.18.15.10"      // in 71.18.15.0/24: added by the change scenario
	targetR       = "71.18.31.10"      // in 71.18.31.0/24: removed by the change scenario
	otherServer   = "198.51.100.10"    // outside every target
	targetP6      = "2605:340:100::10" // in 2605:340:100::/48, a ByteDance prefix
	otherServer6  = "2001:db8:100::10"
	clabUpstream6 = netip.MustParseAddr("fd00:3::1")
	prefixP6      = netip.MustParsePrefix("2605:340:100::/48")
	prefixOther6  = netip.MustParsePrefix("2001:db8:100::/48")
	prefixQ       = netip.MustParsePrefix("71.18.15.0/24")
	prefixR       = netip.MustParsePrefix("71.18.31.0/24")
	prefixP       = netip.MustParsePrefix("71.18.12.0/24")
	prefixOther   = netip.MustParsePrefix("198.51.100.0/24")
	labAsfenceASN = 65000
)

type clabLab struct {
	t       *testing.T
	bin     string
	topo    *lab.Topology
	asfence *lab.ClabNode
	edge    *lab.ClabNode
	client  *lab.ClabNode
	api     *api.Client
	http    *http.Client
	frr     *lab.FRR
}

// startClabLab brings the topology up and waits until asfence's first run
// is applied and the edge has installed every RTBH route as a kernel
// blackhole; it returns the lab and the applied Intent.
func startClabLab(t *testing.T) (*clabLab, *policy.Intent) {
	t.Helper()
	lab.Short(t)
	lab.Require(t, "bird", "birdc", "vtysh", "/usr/lib/frr/zebra", "/usr/lib/frr/staticd", "/usr/lib/frr/bgpd", "nc", "ping")
	bin := buildAsfence(t)
	topo := lab.Containerlab(t, clabFile, map[string]string{"asfence": bin, "asfence-irrd": buildCmd(t, "asfence-irrd")})
	l := &clabLab{t: t, bin: bin, topo: topo, asfence: topo.Nodes["asfence"], edge: topo.Nodes["edge"], client: topo.Nodes["client"]}
	l.http = &http.Client{Transport: &http.Transport{DialContext: l.asfence.DialContext}, Timeout: 10 * time.Second}
	l.api = &api.Client{Base: "http://127.0.0.1:9179", HTTP: l.http}
	l.frr = l.edge.FRR("/run/frr")
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"asfence", "registry", "edge", "upstream", "bird"} {
				t.Logf("node %s log (tail):\n%s", name, tailString(topo.Nodes[name].Log(), 2500))
			}
		}
	})
	in := l.waitApplied(func(*store.Run) bool { return true })
	l.waitBlackholes(in)
	return l, in
}

// waitApplied waits for an applied run accepted by fn and returns the
// Intent in force, read from the daemon's API.
func (l *clabLab) waitApplied(fn func(*store.Run) bool) *policy.Intent {
	l.t.Helper()
	err := lab.Eventually(context.Background(), 90*time.Second, func(ctx context.Context) error {
		if ok, err := l.asfence.Exited(); ok {
			return fmt.Errorf("asfence exited: %v", err)
		}
		rs, err := l.api.Runs(ctx, store.ListOptions{Limit: 5, Outcome: store.Applied})
		if err != nil {
			return err
		}
		if len(rs) == 0 || !fn(rs[0]) {
			return fmt.Errorf("no such applied run yet (%d applied)", len(rs))
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return l.intent()
}

// intent reads the applied Intent from the API.
func (l *clabLab) intent() *policy.Intent {
	l.t.Helper()
	in, err := readIntent(l.getJSON)
	if err != nil {
		l.t.Fatal(err)
	}
	if intentSize(in) == 0 {
		l.t.Fatal("the applied Intent is empty")
	}
	return in
}

func (l *clabLab) getJSON(path string, v any) error {
	resp, err := l.http.Get(l.api.Base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// intentPrefixes is the set of prefixes the edge must blackhole.
func intentPrefixes(in *policy.Intent) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, tg := range in.Targets {
		for _, p := range tg.Prefixes {
			out[p.Prefix] = true
		}
	}
	return out
}

// kernelBlackholes reads the blackhole routes the edge's zebra installed
// from BGP into its kernel (both families).
func (l *clabLab) kernelBlackholes(ctx context.Context) (map[netip.Prefix]bool, error) {
	out := map[netip.Prefix]bool{}
	for _, fam := range []string{"-4", "-6"} {
		js, err := l.edge.Exec(ctx, "ip", "-j", fam, "route", "show", "type", "blackhole", "proto", "bgp")
		if err != nil {
			return nil, err
		}
		var routes []struct {
			Dst string `json:"dst"`
		}
		if err := json.Unmarshal([]byte(js), &routes); err != nil {
			return nil, fmt.Errorf("ip -j route: %v: %q", err, tailString(js, 200))
		}
		for _, r := range routes {
			dst := r.Dst
			if !strings.Contains(dst, "/") { // host routes are shown bare
				if strings.Contains(dst, ":") {
					dst += "/128"
				} else {
					dst += "/32"
				}
			}
			p, err := netip.ParsePrefix(dst)
			if err != nil {
				return nil, err
			}
			out[p] = true
		}
	}
	return out, nil
}

// waitBlackholes waits until the edge's kernel holds exactly the Intent's
// prefixes as blackhole routes.
func (l *clabLab) waitBlackholes(in *policy.Intent) {
	l.t.Helper()
	want := intentPrefixes(in)
	var got map[netip.Prefix]bool
	err := lab.Eventually(context.Background(), 90*time.Second, func(ctx context.Context) error {
		var err error
		if got, err = l.kernelBlackholes(ctx); err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("edge kernel: %d blackhole routes from BGP, want %d (missing %v, extra %v)",
				len(got), len(want), firstKeys(want, got, 3), firstKeys(got, want, 3))
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
}

// firstKeys lists up to n keys of a missing from b.
func firstKeys(a, b map[netip.Prefix]bool, n int) []netip.Prefix {
	var out []netip.Prefix
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return strings.Compare(x.String(), y.String()) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// pings reports whether one ping from node to addr is answered within
// wait seconds; src sets the source address ("" = the node's own).
func pings(ctx context.Context, node *lab.ClabNode, addr, src, wait string) bool {
	args := []string{"-n", "-c", "1", "-W", wait}
	if src != "" {
		args = append(args, "-I", src)
	}
	_, err := node.Exec(ctx, "ping", append(args, addr)...)
	return err == nil
}

// reach reports whether node reaches addr now: one ping (1 s) and a TCP
// connect to port 80 (2 s). Both must agree, else it is an error.
func reach(ctx context.Context, node *lab.ClabNode, addr string) (bool, error) {
	ping := pings(ctx, node, addr, "", "1")
	_, tcpErr := node.Exec(ctx, "nc", "-z", "-w", "2", addr, "80")
	if ping != (tcpErr == nil) {
		return false, fmt.Errorf("%s: ping and TCP disagree: ping answered %v, tcp %v", addr, ping, tcpErr)
	}
	return ping, nil
}

// expectReach waits (bounded) until node reaches addr, or, for want false,
// checks that three attempts in a row fail.
func expectReach(t *testing.T, node *lab.ClabNode, addr string, want bool) {
	t.Helper()
	ctx := context.Background()
	if want {
		err := lab.Eventually(ctx, 20*time.Second, func(ctx context.Context) error {
			ok, err := reach(ctx, node, addr)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s unreachable from %s", addr, node.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	for range 3 {
		ok, err := reach(ctx, node, addr)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Fatalf("%s reaches %s: traffic should be dropped", node.Name, addr)
		}
	}
}

// icmpInEchos reads a node's ICMP echo request counter (/proc/net/snmp is
// per network namespace).
func icmpInEchos(ctx context.Context, node *lab.ClabNode) (int, error) {
	out, err := node.Exec(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var head []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		if i := slices.Index(head, "InEchos"); i > 0 && i < len(f) {
			return strconv.Atoi(f[i])
		}
	}
	return 0, fmt.Errorf("no Icmp InEchos in /proc/net/snmp")
}

// upstreamRoutes lists the prefixes the edge accepted from the upstream
// (its IPv4 and its IPv6 session).
func (l *clabLab) upstreamRoutes(ctx context.Context) (map[netip.Prefix]bool, error) {
	out := map[netip.Prefix]bool{}
	for _, s := range []struct {
		afi      string
		neighbor netip.Addr
	}{{"ipv4", clabUpstream}, {"ipv6", clabUpstream6}} {
		if err := l.frrRoutes(ctx, "show bgp "+s.afi+" unicast neighbors "+s.neighbor.String()+" routes json", out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// frrRoutes adds the prefixes of an FRR "... routes json" answer to out.
func (l *clabLab) frrRoutes(ctx context.Context, command string, out map[netip.Prefix]bool) error {
	var v struct {
		Routes map[string]json.RawMessage `json:"routes"`
	}
	if err := l.frr.JSON(ctx, command, &v); err != nil {
		return err
	}
	for k := range v.Routes {
		p, err := netip.ParsePrefix(k)
		if err != nil {
			return err
		}
		out[p] = true
	}
	return nil
}

// updatesFromAsfence is FRR's count of UPDATE messages received from asfence.
func (l *clabLab) updatesFromAsfence(ctx context.Context) (int, error) {
	var m map[string]struct {
		MessageStats struct {
			UpdatesRecv int `json:"updatesRecv"`
		} `json:"messageStats"`
	}
	if err := l.frr.JSON(ctx, "show bgp neighbors "+clabAsfence.String()+" json", &m); err != nil {
		return 0, err
	}
	n, ok := m[clabAsfence.String()]
	if !ok {
		return 0, fmt.Errorf("no neighbor %s", clabAsfence)
	}
	return n.MessageStats.UpdatesRecv, nil
}

// TestLabBlock: the edge's kernel blackholes every target prefix
// (startClabLab), overriding the upstream's route for it; the client
// cannot reach target addresses (ping and TCP) while other addresses
// answer, and loose uRPF drops what target networks send.
func TestLabBlock(t *testing.T) {
	t.Parallel()
	l, in := startClabLab(t)
	ctx := context.Background()
	if !intentPrefixes(in)[prefixP] || intentPrefixes(in)[prefixQ] {
		t.Fatalf("lab data: want %s blocked and %s not", prefixP, prefixQ)
	}
	// The edge has both the upstream's route and asfence's for P; the
	// RTBH route wins (local preference) and points at the discard address.
	var v struct {
		Paths []struct {
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			LocPrf   int `json:"locPrf"`
			Bestpath struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
		} `json:"paths"`
	}
	err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		v.Paths = nil
		if err := l.frr.JSON(ctx, "show bgp ipv4 unicast "+prefixP.String()+" json", &v); err != nil {
			return err
		}
		best := ""
		for _, p := range v.Paths {
			if p.Bestpath.Overall && len(p.Nexthops) > 0 {
				best = fmt.Sprintf("%s/%d", p.Nexthops[0].IP, p.LocPrf)
			}
		}
		if len(v.Paths) != 2 || best != "192.0.2.1/5000" {
			return fmt.Errorf("edge: %s: %d paths, best %q (want the upstream's and asfence's, asfence's best via 192.0.2.1)", prefixP, len(v.Paths), best)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	expectReach(t, l.client, otherServer, true)
	expectReach(t, l.client, targetQ, true) // same server, prefix not in the registry: the path works
	expectReach(t, l.client, targetP, false)
	// IPv6 the same way.
	if !intentPrefixes(in)[prefixP6] {
		t.Fatalf("lab data: want %s blocked", prefixP6)
	}
	expectReach(t, l.client, otherServer6, true)
	expectReach(t, l.client, targetP6, false)

	// Source-based: the target network pings the client. From the
	// unblocked address of the target server the pings arrive (the path
	// works both ways); from the blocked address nothing arrives: the
	// client's echo counter stays, loose uRPF at the edge drops them.
	server := l.topo.Nodes["target-server"]
	err = lab.Eventually(ctx, 20*time.Second, func(ctx context.Context) error {
		if !pings(ctx, server, clabClient, targetQ, "1") {
			return fmt.Errorf("target-server does not reach the client from %s", targetQ)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before, err := icmpInEchos(ctx, l.client)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if pings(ctx, server, clabClient, targetP, "1") {
			t.Fatalf("target-server reaches the client from %s", targetP)
		}
	}
	if !pings(ctx, server, clabClient, targetQ, "1") {
		t.Fatalf("target-server no longer reaches the client from %s", targetQ)
	}
	after, err := icmpInEchos(ctx, l.client)
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the one ping from the unblocked address arrived.
	if after != before+1 {
		t.Fatalf("client received %d echo requests for 3 from %s (dropped by uRPF) and 1 from %s", after-before, targetP, targetQ)
	}
}

// TestLabRouteFilter: the edge loads the FRR filter asfence generated and
// applies it to the upstream session: the upstream's target routes are
// rejected (by prefix list, and by origin AS for a target route the
// registry does not list), the other network is accepted.
func TestLabRouteFilter(t *testing.T) {
	t.Parallel()
	l, _ := startClabLab(t)
	ctx := context.Background()
	all := map[netip.Prefix]bool{prefixP: true, prefixQ: true, prefixR: true, prefixOther: true, prefixP6: true, prefixOther6: true}
	var got map[netip.Prefix]bool
	waitUpstream := func(want map[netip.Prefix]bool) {
		t.Helper()
		err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
			var err error
			if got, err = l.upstreamRoutes(ctx); err != nil {
				return err
			}
			if !maps.Equal(got, want) {
				return fmt.Errorf("edge accepted %v from the upstream, want %v", got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitUpstream(all) // without the filter
	before, err := l.frr.Session(ctx, clabUpstream)
	if err != nil {
		t.Fatal(err)
	}

	generated := l.asfence.HostPath("/var/lib/asfence/out/asfence-frr.conf")
	if _, err := os.Stat(generated); err != nil {
		t.Fatalf("asfence wrote no FRR filter: %v", err)
	}
	if out, err := l.edge.Exec(ctx, "vtysh", "--vty_socket", "/run/frr", "-f", generated); err != nil {
		t.Fatalf("vtysh -f %s: %v\n%s", generated, err, out)
	}
	if out, err := l.edge.Exec(ctx, "vtysh", "--vty_socket", "/run/frr",
		"-c", "configure terminal", "-c", "router bgp 65000", "-c", "address-family ipv4 unicast",
		"-c", "neighbor "+clabUpstream.String()+" route-map ASFENCE-REJECT in", "-c", "exit-address-family",
		"-c", "address-family ipv6 unicast", "-c", "neighbor "+clabUpstream6.String()+" route-map ASFENCE-REJECT in", "-c", "end",
		"-c", "clear bgp ipv4 unicast "+clabUpstream.String()+" soft in",
		"-c", "clear bgp ipv6 unicast "+clabUpstream6.String()+" soft in"); err != nil {
		t.Fatalf("apply the filter: %v\n%s", err, out)
	}
	waitUpstream(map[netip.Prefix]bool{prefixOther: true, prefixOther6: true})
	after, err := l.frr.Session(ctx, clabUpstream)
	if err != nil {
		t.Fatal(err)
	}
	if !before.Unchanged(after) {
		t.Fatalf("the upstream session was reset by applying the filter: %+v -> %+v", before, after)
	}
	expectReach(t, l.client, otherServer, true)
	expectReach(t, l.client, otherServer6, true)
}

// TestLabFlowSpec: the BIRD router holds a destination and a source
// discard rule for every target's prefixes.
func TestLabFlowSpec(t *testing.T) {
	t.Parallel()
	l, in := startClabLab(t)
	bird := l.topo.Nodes["bird"].BIRD("/run/bird.ctl")
	want := expectFlowSpec(in)
	if countIn(want, lab.IPv4FlowSpec) == 0 || countIn(want, lab.IPv6FlowSpec) == 0 {
		t.Fatalf("expected rules look wrong: %d", len(want))
	}
	ctx := context.Background()
	for _, f := range []lab.Family{lab.IPv4FlowSpec, lab.IPv6FlowSpec} {
		checkHolds(t, ctx, bird, f, want, false)
	}
	// The target tag is <asn>:666:<target id>.
	out, err := bird.Cmd(ctx, "show", "route", "table", "flowtab4", "all")
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range in.Targets {
		tag := fmt.Sprintf("(%d, 666, %d)", labAsfenceASN, tg.ID)
		if !strings.Contains(out, tag) {
			t.Fatalf("no FlowSpec rule tagged %s for %s", tag, tg.Name)
		}
	}
}

// TestLabChange: the registry changes (a target prefix added, one removed);
// after a triggered run the edge holds the new set, received as a delta on
// the same session, and traffic follows: the added prefix is dropped, the
// removed one reachable again.
func TestLabChange(t *testing.T) {
	t.Parallel()
	l, in := startClabLab(t)
	ctx := context.Background()
	if !intentPrefixes(in)[prefixR] {
		t.Fatalf("lab data: want %s blocked at first", prefixR)
	}
	expectReach(t, l.client, targetQ, true)
	expectReach(t, l.client, targetR, false)
	session, err := l.frr.Session(ctx, clabAsfence)
	if err != nil {
		t.Fatal(err)
	}
	updates, err := l.updatesFromAsfence(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The registry change: Q's route object added, R's removed.
	registry := l.topo.Nodes["registry"]
	data := registry.HostPath("/etc/irr/targets.rpsl")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	objR := regexp.MustCompile(`(?m)^route: 71\.18\.31\.0/24\n(?:[a-z0-9-]+: .*\n)*\n?`)
	if !objR.Match(b) {
		t.Fatalf("%s: no route object for %s", data, prefixR)
	}
	b = objR.ReplaceAll(b, nil)
	b = append(b, "\nroute: 71.18.15.0/24\norigin: AS396986\ndescr: bytedance\nsource: LAB\n"...)
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := registry.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = lab.Eventually(ctx, 20*time.Second, func(context.Context) error {
		if !strings.Contains(registry.Log(), "reloaded") {
			return fmt.Errorf("registry has not reloaded: %s", tailString(registry.Log(), 300))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	out, err := l.asfence.Exec(ctx, l.bin, "trigger", "--wait", "--api", "127.0.0.1:9179")
	if err != nil || !strings.Contains(out, " applied (+1 -1 prefixes)") {
		t.Fatalf("asfence trigger --wait: %v\n%s", err, out)
	}
	in2 := l.intent()
	p2 := intentPrefixes(in2)
	if !p2[prefixQ] || p2[prefixR] || len(p2) != len(intentPrefixes(in)) {
		t.Fatalf("applied set after the change: %d prefixes, %s %v, %s %v", len(p2), prefixQ, p2[prefixQ], prefixR, p2[prefixR])
	}
	l.waitBlackholes(in2)

	after, err := l.frr.Session(ctx, clabAsfence)
	if err != nil {
		t.Fatal(err)
	}
	if !session.Unchanged(after) {
		t.Fatalf("the session with asfence was reset: %+v -> %+v", session, after)
	}
	updates2, err := l.updatesFromAsfence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One route added, one withdrawn: one or two UPDATEs, not the ~370
	// routes again.
	if d := updates2 - updates; d < 1 || d > 2 {
		t.Fatalf("edge received %d UPDATEs for a one-added, one-removed change (want 1 or 2)", d)
	}
	expectReach(t, l.client, targetQ, false)
	expectReach(t, l.client, targetR, true)
	expectReach(t, l.client, otherServer, true)
}

// TestLabRestart: asfence crashes (SIGKILL) in its node and is started
// again by the node's run.sh, as systemd would; then the whole node is
// killed and started again (containerlab restart). With graceful restart
// the edge keeps every blackhole route throughout (its kernel table is
// sampled), target traffic never passes (pinged all along), and afterwards
// the edge holds exactly the applied set on a new session.
func TestLabRestart(t *testing.T) {
	t.Parallel()
	l, in := startClabLab(t)
	ctx := context.Background()
	l.survives(in, "asfence killed in its node", func() error {
		if n, err := l.asfence.KillProcess(ctx, "asfence"); err != nil || n != 1 {
			return fmt.Errorf("kill -9 asfence: %d processes, %v", n, err)
		}
		return nil
	})
	l.survives(in, "the asfence node restarted", func() error { return l.asfence.Restart(ctx) })
}

// survives runs crash while watching the edge, then waits for asfence to be
// back, and checks that nothing was seen missing meanwhile.
func (l *clabLab) survives(in *policy.Intent, what string, crash func() error) {
	t := l.t
	t.Helper()
	ctx := context.Background()
	want := len(intentPrefixes(in))
	session, err := l.frr.Session(ctx, clabAsfence)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	low, samples, passed, sent := want, 0, 0, 0
	var mu sync.Mutex
	wg.Add(2)
	go func() { // the edge's kernel table
		defer wg.Done()
		for wctx.Err() == nil {
			if got, err := l.kernelBlackholes(wctx); err == nil {
				mu.Lock()
				low, samples = min(low, len(got)), samples+1
				mu.Unlock()
			}
			select {
			case <-wctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	go func() { // traffic from the client to the target
		defer wg.Done()
		for wctx.Err() == nil {
			ok := pings(wctx, l.client, targetP, "", "0.2")
			if wctx.Err() != nil {
				return
			}
			mu.Lock()
			sent++
			if ok {
				passed++
			}
			mu.Unlock()
		}
	}()
	defer func() {
		stop()
		wg.Wait()
	}()

	if err := crash(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	err = lab.Eventually(ctx, 60*time.Second, func(ctx context.Context) error {
		again, err := l.frr.Session(ctx, clabAsfence)
		if err != nil {
			return err
		}
		if !again.Established || again.Ups <= session.Ups {
			return fmt.Errorf("session with asfence: %+v (before: %+v)", again, session)
		}
		var v map[string]struct {
			GracefulRestartInfo struct {
				EndOfRibRecv map[string]bool `json:"endOfRibRecv"`
			} `json:"gracefulRestartInfo"`
		}
		if err := l.frr.JSON(ctx, "show bgp neighbors "+clabAsfence.String()+" json", &v); err != nil {
			return err
		}
		if eor := v[clabAsfence.String()].GracefulRestartInfo.EndOfRibRecv; !eor["ipv4Unicast"] || !eor["ipv6Unicast"] {
			return fmt.Errorf("no End-of-RIB from asfence yet: %v", eor)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	// The edge kept the routes because asfence's new OPEN said it had
	// (graceful restart: Restart State, and Forwarding State per family).
	gr, err := l.frr.NeighborGR(ctx, clabAsfence)
	if err != nil {
		t.Fatal(err)
	}
	if !gr.Restarting || !slices.Equal(gr.Preserved, []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}) {
		t.Fatalf("%s: the edge decoded asfence's graceful restart capability as %+v, want R and F for IPv4 and IPv6", what, gr)
	}
	l.waitBlackholes(in)
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if samples < 10 || sent < 3 {
		t.Fatalf("%s: too few samples to tell: %d route samples, %d pings", what, samples, sent)
	}
	if low != want {
		t.Fatalf("%s: the edge's blackhole routes dipped to %d of %d", what, low, want)
	}
	if passed > 0 {
		t.Fatalf("%s: %d of %d pings to %s passed", what, passed, sent, targetP)
	}
	t.Logf("%s: %d kernel samples, never below %d routes; %d pings, none passed", what, samples, want, sent)
}

// TestLabConfigsParse: the lab's node configs pass the real parsers (FRR
// would log and skip a bad line rather than fail to start).
func TestLabConfigsParse(t *testing.T) {
	lab.Require(t, "bird", "vtysh")
	t.Parallel()
	bin := buildAsfence(t)
	ctx := context.Background()
	for _, c := range [][]string{
		{"bird", "-p", "-c", "containerlab/nodes/bird/bird.conf"},
		{"bird", "-p", "-c", "containerlab/nodes/upstream/bird.conf"},
		{"vtysh", "-C", "-f", "containerlab/nodes/edge/frr.conf"},
		{bin, "check-config", "containerlab/nodes/asfence/asfence.yaml"},
		{"sh", "-n", "containerlab/nodes/asfence/run.sh"},
	} {
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput()
		if err != nil || (c[0] == "vtysh" && strings.Contains(string(out), "%")) {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}
