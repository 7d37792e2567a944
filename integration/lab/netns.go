package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Netns is one side of a namespace pair.
type Netns struct {
	// Name of the namespace (for Config.Netns and `ip netns exec`).
	Name string
	// V4 and V6 are this side's addresses on the veth link.
	V4, V6 netip.Addr
}

// Pair is two network namespaces joined by a veth link: A has 10.0.0.1/30
// and fd00:0:0:1::1/64, B has 10.0.0.2/30 and fd00:0:0:1::2/64. Each pair is
// separate, so parallel tests reuse the same addresses; only the names are
// unique. Both namespaces (and what still runs in them) go at cleanup.
type Pair struct{ A, B Netns }

// NewPair creates a namespace pair (needs root).
func NewPair(t testing.TB) *Pair {
	t.Helper()
	base := RandomName("al")
	p := &Pair{
		A: Netns{Name: base + "-a", V4: netip.MustParseAddr("10.0.0.1"), V6: netip.MustParseAddr("fd00:0:0:1::1")},
		B: Netns{Name: base + "-b", V4: netip.MustParseAddr("10.0.0.2"), V6: netip.MustParseAddr("fd00:0:0:1::2")},
	}
	ctx := context.Background()
	ip := func(args ...string) {
		t.Helper()
		if _, err := run(ctx, "", "ip", args...); err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
	for _, n := range []Netns{p.A, p.B} {
		ip("netns", "add", n.Name)
		name := n.Name
		t.Cleanup(func() { deleteNetns(name) })
		ip("-n", n.Name, "link", "set", "lo", "up")
	}
	// The veth is created directly inside the namespaces: the test's own
	// namespace never sees it.
	ip("link", "add", "v0", "netns", p.A.Name, "type", "veth", "peer", "name", "v0", "netns", p.B.Name)
	for _, n := range []Netns{p.A, p.B} {
		ip("-n", n.Name, "addr", "add", n.V4.String()+"/30", "dev", "v0")
		// nodad: a tentative address cannot be bound for about 2 s.
		ip("-n", n.Name, "-6", "addr", "add", n.V6.String()+"/64", "dev", "v0", "nodad")
		// No link-local address: BIRD would send it as a second IPv6 next
		// hop, which FRR without zebra cannot use (it withdraws the route).
		ip("-n", n.Name, "link", "set", "v0", "addrgenmode", "none")
		ip("-n", n.Name, "link", "set", "v0", "up")
	}
	return p
}

// deleteNetns kills what still runs in the namespace, then deletes it.
func deleteNetns(name string) {
	ctx := context.Background()
	_, _ = killNetns(ctx, name, func(int) bool { return true })
	_, _ = run(ctx, "", "ip", "netns", "del", name)
}

// killNetns sends SIGKILL to the processes in the namespace for which match
// is true and returns how many it signalled.
func killNetns(ctx context.Context, name string, match func(pid int) bool) (int, error) {
	out, err := run(ctx, "", "ip", "netns", "pids", name)
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || !match(pid) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
			ForgetFRRTmp(pid)
		}
	}
	return killed, nil
}

// ForgetFRRTmp removes the directory an FRR process killed with SIGKILL, or
// run as a dry run (-C), leaves behind (/var/tmp/frr/<daemon>.<pid>): a
// later FRR process given the same pid would fail on it.
func ForgetFRRTmp(pid int) {
	dirs, _ := filepath.Glob(fmt.Sprintf("/var/tmp/frr/*.%d", pid))
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}
