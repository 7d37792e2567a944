package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
)

// The containerlab topology users deploy (integration/containerlab/rtbh) is
// brought up here in network namespaces, node commands and config files
// unchanged, and checked on the routers: BIRD holds every RTBH route and
// FlowSpec rule of the embedded Intent and has installed the RTBH routes in
// its kernel as blackholes; FRR, configured for one target and RTBH only,
// holds exactly that target's routes and no FlowSpec.
func TestContainerlabRTBHTopology(t *testing.T) {
	lab.Short(t)
	bin := buildAsfence(t)
	topo := lab.Containerlab(t, "containerlab/rtbh/rtbh.clab.yml", map[string]string{"asfence": bin})
	in := embeddedIntent(t)
	all := expectRTBH(in)
	tencent := expectRTBH(in, "tencent")
	flows := expectFlowSpec(in)
	want := map[string]int{
		"bird4": countIn(all, lab.IPv4Unicast), "bird6": countIn(all, lab.IPv6Unicast),
		"flow4": countIn(flows, lab.IPv4FlowSpec), "flow6": countIn(flows, lab.IPv6FlowSpec),
		"frr4": countIn(tencent, lab.IPv4Unicast), "frr6": countIn(tencent, lab.IPv6Unicast),
	}
	if want["bird4"] == 0 || want["frr6"] == 0 || want["flow4"] == 0 || want["frr4"] >= want["bird4"] {
		t.Fatalf("expected counts look wrong: %v", want)
	}
	bird, frr := topo.Nodes["bird"], topo.Nodes["frr"]
	ctx := context.Background()

	birdCount := func(ctx context.Context, table string) (int, error) {
		out, err := bird.Exec(ctx, "birdc", "-s", "/run/bird.ctl", "show", "route", "table", table, "count")
		if err != nil {
			return 0, err
		}
		m := regexp.MustCompile(`(\d+) of \d+ routes`).FindStringSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("unexpected birdc output %q", out)
		}
		return strconv.Atoi(m[1])
	}
	frrCount := func(ctx context.Context, afi string) (int, error) {
		out, err := frr.Exec(ctx, "vtysh", "--vty_socket", "/run", "-c", "show bgp "+afi+" summary json")
		if err != nil {
			return 0, err
		}
		var s struct {
			Peers map[string]struct {
				State  string `json:"state"`
				PfxRcd int    `json:"pfxRcd"`
			} `json:"peers"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return 0, fmt.Errorf("vtysh: %v: %q", err, out)
		}
		p, ok := s.Peers["10.0.2.1"]
		if !ok || p.State != "Established" {
			return 0, fmt.Errorf("session to asfence not established: %q", out)
		}
		return p.PfxRcd, nil
	}
	got := map[string]int{}
	var mismatch error
	err := lab.Eventually(ctx, 90*time.Second, func(ctx context.Context) error {
		var err error
		for key, table := range map[string]string{"bird4": "master4", "bird6": "master6", "flow4": "flowtab4", "flow6": "flowtab6"} {
			if got[key], err = birdCount(ctx, table); err != nil {
				return err
			}
		}
		for key, afi := range map[string]string{"frr4": "ipv4 unicast", "frr6": "ipv6 unicast"} {
			if got[key], err = frrCount(ctx, afi); err != nil {
				return err
			}
		}
		// BIRD's master tables also hold the two static discard routes.
		if got["bird4"]-1 != want["bird4"] || got["bird6"]-1 != want["bird6"] ||
			got["flow4"] != want["flow4"] || got["flow6"] != want["flow6"] ||
			got["frr4"] != want["frr4"] || got["frr6"] != want["frr6"] {
			mismatch = fmt.Errorf("routers hold %v, want %v (+1 static discard route per BIRD master table)", got, want)
			return mismatch
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v (last mismatch: %v)\nasfence log:\n%s", err, mismatch, tailString(topo.Nodes["asfence"].Log(), 3000))
	}
	// FlowSpec was negotiated with FRR, and none was sent.
	if n, err := frrCount(ctx, "ipv4 flowspec"); err != nil || n != 0 {
		t.Fatalf("frr flowspec: %d routes, %v (want 0: neighbor is blackhole-only)", n, err)
	}
	// A tencent and a bytedance prefix: both at BIRD, only tencent at FRR.
	tp := in.Target("tencent").Prefixes[0].Prefix
	bp := in.Target("bytedance").Prefixes[0].Prefix
	if out, err := frr.Exec(ctx, "vtysh", "--vty_socket", "/run", "-c", "show bgp ipv4 unicast "+bp.String()+" json"); err != nil || strings.Contains(out, `"paths"`) {
		t.Fatalf("frr holds bytedance prefix %s: %v %s", bp, err, out)
	}
	out, err := bird.Exec(ctx, "birdc", "-s", "/run/bird.ctl", "show", "route", tp.String(), "all")
	if err != nil || !strings.Contains(out, "(65535,666)") || !strings.Contains(out, "(65535,65281)") || !strings.Contains(out, "(65000, 666, 2)") {
		t.Fatalf("bird route %s lacks BLACKHOLE / NO_EXPORT / target tag: %v\n%s", tp, err, out)
	}
	// The routes are blackholes in BIRD's kernel table.
	out, err = bird.Exec(ctx, "ip", "-4", "route", "show", "type", "blackhole", "proto", "bird")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != want["bird4"] || !strings.Contains(out, "blackhole "+tp.String()) {
		t.Fatalf("kernel blackhole routes: %d (want %d, incl. %s)", n, want["bird4"], tp)
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
