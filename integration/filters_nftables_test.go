package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/prefixset"
)

// fltNetnsRun runs a command inside a namespace with a deadline.
func fltNetnsRun(ctx context.Context, ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func fltIPCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// fltReachable pings dst from namespace ns (optionally from src), one echo
// with a 2 s deadline.
func fltReachable(ctx context.Context, ns, src, dst string) bool {
	args := []string{"ping", "-n", "-c", "1", "-w", "2"}
	if src != "" {
		args = append(args, "-I", src)
	}
	_, err := fltNetnsRun(ctx, ns, append(args, dst)...)
	return err == nil
}

// TestFiltersNftablesDropsTargetTraffic loads the generated ruleset in one
// namespace of a veth pair. From the other, traffic to an address inside
// the target space (assigned to the veth for the test) and traffic from a
// target source address are dropped, while traffic to and from ordinary
// addresses passes. Before the ruleset is loaded, all of it passes.
func TestFiltersNftablesDropsTargetTraffic(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "nft", "ip", "ping")
	ctx := context.Background()
	_, in := policyIntent(t)
	cov4, cov6 := in.Coverage("", prefixset.IPv4), in.Coverage("", prefixset.IPv6)
	dst4 := cov4[0].Addr().Next()           // a target address on A
	src4 := cov4[len(cov4)-1].Addr().Next() // a target address on B, as source
	dst6 := cov6[0].Addr().Next()           // an IPv6 target address on A
	file := fltRenderFile(t, in, "nftables", lab.Dir(t))

	p := lab.NewPair(t)
	a, b := p.A.Name, p.B.Name
	fltIPCmd(t, "-n", a, "addr", "add", dst4.String()+"/32", "dev", "v0")
	fltIPCmd(t, "-n", b, "route", "add", dst4.String()+"/32", "dev", "v0")
	fltIPCmd(t, "-n", b, "addr", "add", src4.String()+"/32", "dev", "v0")
	fltIPCmd(t, "-n", a, "route", "add", src4.String()+"/32", "dev", "v0")
	fltIPCmd(t, "-n", a, "-6", "addr", "add", dst6.String()+"/128", "dev", "v0", "nodad")
	fltIPCmd(t, "-n", b, "-6", "route", "add", dst6.String()+"/128", "dev", "v0")

	cases := []struct {
		what     string
		src, dst string
		blocked  bool
	}{
		{"to an ordinary address", "", p.A.V4.String(), false},
		{"to a target address", "", dst4.String(), true},
		{"from a target address", src4.String(), p.A.V4.String(), true},
		{"IPv6 to an ordinary address", "", p.A.V6.String(), false},
		{"IPv6 to a target address", "", dst6.String(), true},
	}
	// Without the ruleset every path works: the drops below are the
	// ruleset's doing.
	for _, c := range cases {
		if !fltReachable(ctx, b, c.src, c.dst) {
			t.Fatalf("before loading the ruleset, %s (%s) is unreachable: the lab is broken", c.what, c.dst)
		}
	}
	if out, err := fltNetnsRun(ctx, a, "nft", "-f", file); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	if out, err := fltNetnsRun(ctx, a, "nft", "get", "element", "inet", "asfence", filters.DefaultNames.ACLV4, "{", dst4.String(), "}"); err != nil {
		t.Fatalf("target address not in the loaded set: %v %s", err, out)
	}
	for _, c := range cases {
		if got := !fltReachable(ctx, b, c.src, c.dst); got != c.blocked {
			t.Errorf("%s (%s -> %s): blocked %v, want %v", c.what, c.src, c.dst, got, c.blocked)
		}
	}
	// Loading the file again replaces the table atomically (no duplicate
	// rules, no error).
	if out, err := fltNetnsRun(ctx, a, "nft", "-f", file); err != nil {
		t.Fatalf("second nft -f: %v\n%s", err, out)
	}
	out, err := fltNetnsRun(ctx, a, "nft", "list", "chain", "inet", "asfence", "input")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "drop"); n != 4 {
		t.Errorf("input chain has %d drop rules after reloading, want 4:\n%s", n, out)
	}
}
