package filters

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/policy"
)

// The real configuration parsers installed here judge the generated files:
// BIRD (bird -p), FRR (vtysh -C and bgpd -C), OpenBGPD (bgpd -n) and
// nftables (nft -c, in a fresh network namespace). A rejected file fails
// the test with the parser's own message.

// needTool returns the path of a parser, skipping in -short mode and
// failing otherwise when it is missing (CI installs all of them).
func needTool(t *testing.T, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if testing.Short() {
		t.Skipf("%s not installed", name)
	}
	t.Fatalf("%s not installed (make deps installs it)", name)
	return ""
}

// runTool runs a parser with a deadline and returns its combined output
// and whether it exited 0.
func runTool(t *testing.T, name string, args ...string) (string, bool) {
	t.Helper()
	// A deadline only against a hung parser: FRR's dry run of the embedded
	// snapshot's lists takes tens of seconds on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out", name, args)
	}
	if cmd.Process != nil {
		// FRR's dry run (-C) leaves /var/tmp/frr/<daemon>.<pid> behind; a
		// later FRR process given the same pid would fail on it.
		dirs, _ := filepath.Glob(fmt.Sprintf("/var/tmp/frr/*.%d", cmd.Process.Pid))
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	return out.String(), err == nil
}

// parserCheck validates one rendered file with the real parser for its
// vendor and returns the parser's complaint; vendors without a parser here
// are not checked.
func parserCheck(t *testing.T, vendor string, out []byte) error {
	t.Helper()
	dir, err := os.MkdirTemp("", "afp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, FileName(vendor))
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	n := DefaultNames
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fail := func(tool, msg string) error {
		return fmt.Errorf("%s rejects the generated %s file:\n%s\n--- file (first 60 lines):\n%s", tool, vendor, msg, head(out, 60))
	}
	switch vendor {
	case "bird":
		bird := needTool(t, "bird", "/usr/sbin/bird")
		// A minimal BIRD config that includes the output and uses its
		// filter on both families, so unknown names fail too.
		main := write("bird.conf", fmt.Sprintf(`router id 192.0.2.1;
include %q;
protocol device { }
protocol static s4 { ipv4 { import filter %s; }; route 198.51.100.0/24 blackhole; }
protocol static s6 { ipv6 { import filter %s; }; route 2001:db8::/32 blackhole; }
`, file, ident(n.Policy), ident(n.Policy)))
		if msg, ok := runTool(t, bird, "-p", "-c", main); !ok {
			return fail("bird -p", msg)
		}
	case "frr":
		vtysh := needTool(t, "vtysh", "/usr/bin/vtysh")
		if msg, ok := runTool(t, vtysh, "-C", "-f", file); !ok {
			return fail("vtysh -C", msg)
		}
		// bgpd -C also checks semantics but exits 0 on errors: any output
		// is a failure. The route-map is applied to a neighbor.
		bgpd := needTool(t, "frr-bgpd", "/usr/lib/frr/bgpd")
		full := write("bgpd.conf", string(out)+fmt.Sprintf(`router bgp 65001
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65002
 address-family ipv4 unicast
  neighbor 192.0.2.2 route-map %s in
 exit-address-family
 address-family ipv6 unicast
  neighbor 192.0.2.2 activate
  neighbor 192.0.2.2 route-map %s in
 exit-address-family
exit
`, n.Policy, n.Policy))
		msg, ok := runTool(t, bgpd, "-C", "-f", full, "-Z", "-S", "-P", "0", "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir)
		if !ok || strings.TrimSpace(msg) != "" {
			return fail("bgpd -C", msg)
		}
	case "openbgpd":
		bgpd := needTool(t, "openbgpd", "/usr/sbin/bgpd")
		main := write("bgpd.conf", fmt.Sprintf(`AS 65001
router-id 192.0.2.1
fib-update no
neighbor 192.0.2.2 {
	remote-as 65002
}
allow from any
allow to any
include %q
`, file))
		if msg, ok := runTool(t, bgpd, "-n", "-f", main); !ok {
			return fail("bgpd -n", msg)
		}
	case "nftables":
		nft := needTool(t, "nft", "/usr/sbin/nft")
		unshare := needTool(t, "unshare", "/usr/bin/unshare")
		// A fresh network namespace: checked against an empty ruleset,
		// and nothing on the host is touched.
		if msg, ok := runTool(t, unshare, "-n", nft, "-c", "-f", file); !ok {
			return fail("nft -c", msg)
		}
	}
	return nil
}

func ident(s string) string { return strings.ReplaceAll(s, "-", "_") }

func head(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestRealParsers renders the fixed, the empty and the embedded default
// snapshot for every vendor that has a parser here.
func TestRealParsers(t *testing.T) {
	intents := map[string]*policy.Intent{
		"small":    smallIntent(t),
		"empty":    emptyIntent(),
		"embedded": embeddedIntent(t),
	}
	exact := smallIntent(t)
	exact.RouteFilter.OrLonger = false // exact entries and sibling ranges (ge = le)
	intents["exact"] = exact
	for _, vendor := range []string{"bird", "frr", "openbgpd", "nftables"} {
		for name, in := range intents {
			t.Run(vendor+"/"+name, func(t *testing.T) {
				t.Parallel()
				if err := parserCheck(t, vendor, render(t, in, goldenOptions(vendor))); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestParsersRejectBrokenFiles proves the checks can fail: a damaged file
// is rejected by each parser, with its message.
func TestParsersRejectBrokenFiles(t *testing.T) {
	in := smallIntent(t)
	for _, vendor := range []string{"bird", "frr", "openbgpd", "nftables"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			out := render(t, in, goldenOptions(vendor))
			broken := bytes.Replace(out, []byte("71.18.247.0/24"), []byte("71.18.247.0/33"), 1)
			if bytes.Equal(out, broken) {
				t.Fatal("fixture prefix not found")
			}
			if err := parserCheck(t, vendor, broken); err == nil {
				t.Errorf("%s: the parser accepted a /33 prefix", vendor)
			} else {
				t.Logf("rejected as expected: %.200s", err)
			}
		})
	}
}
