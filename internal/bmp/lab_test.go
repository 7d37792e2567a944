package bmp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/bmp"
)

// ASNs of the lab: the upstream, the monitored router, a target origin
// (ByteDance), another origin.
const (
	upstreamAS = 64500
	routerAS   = 65010
	targetAS   = 396986
	otherAS    = 13335
)

// The upstream's routes: one originated by the target, one by another AS,
// one with the target only in transit, and an IPv6 target route.
var (
	targetPfx  = netip.MustParsePrefix("203.0.113.0/24")
	otherPfx   = netip.MustParsePrefix("198.51.100.0/24")
	transitPfx = netip.MustParsePrefix("192.0.2.0/24")
	target6Pfx = netip.MustParsePrefix("2001:db8:1::/48")
)

// collector keeps every Update the receiver reports.
type collector struct {
	mu  sync.Mutex
	all []bmp.Update
}

func (c *collector) add(us []bmp.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, us...)
}

// find returns the Updates matching f.
func (c *collector) find(f func(bmp.Update) bool) []bmp.Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bmp.Update
	for _, u := range c.all {
		if f(u) {
			out = append(out, u)
		}
	}
	return out
}

// logBuffer is a logrus output a test can read.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReceiver starts a receiver on a fresh loopback address; it stops at
// the end of the test.
func startReceiver(t *testing.T, cfg bmp.Config) (*bmp.Receiver, *collector, *logBuffer) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = netip.AddrPortFrom(lab.Loopback(t), 0).String()
	}
	logs := &logBuffer{}
	l := logrus.New()
	l.SetOutput(io.MultiWriter(logs, testWriter{t}))
	l.SetLevel(logrus.DebugLevel)
	cfg.Logger = logrus.NewEntry(l)
	col := &collector{}
	r, err := bmp.New(cfg, col.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r, col, logs
}

// testWriter logs to the test (shown on failure or with -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func receiverPort(r *bmp.Receiver) (netip.Addr, int) {
	a := r.Addr().(*net.TCPAddr)
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap(), a.Port
}

// routerStatus waits until the receiver's status of addr satisfies ok.
func waitStatus(t *testing.T, r *bmp.Receiver, addr netip.Addr, what string, ok func(bmp.RouterStatus) bool) bmp.RouterStatus {
	t.Helper()
	var last bmp.RouterStatus
	err := lab.Eventually(context.Background(), 60*time.Second, func(context.Context) error {
		for _, s := range r.Status() {
			if s.Addr == addr {
				last = s
				if ok(s) {
					return nil
				}
				return fmt.Errorf("router %s: %+v", addr, s)
			}
		}
		return fmt.Errorf("router %s not in the status %+v", addr, r.Status())
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return last
}

// waitUpdate waits for an Update matching f.
func waitUpdate(t *testing.T, c *collector, what string, f func(bmp.Update) bool) bmp.Update {
	t.Helper()
	var got []bmp.Update
	err := lab.Eventually(context.Background(), 60*time.Second, func(context.Context) error {
		if got = c.find(f); len(got) == 0 {
			return fmt.Errorf("no update yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return got[0]
}

// announceUpstream makes a gobgpd upstream originate the lab's routes
// (the upstream prepends its own AS when it sends them).
func announceUpstream(t *testing.T, up *lab.GoBGPd) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []struct {
		fam, pfx, path, nh string
	}{
		{"ipv4", targetPfx.String(), fmt.Sprint(targetAS), "192.0.2.254"},
		{"ipv4", otherPfx.String(), fmt.Sprint(otherAS), "192.0.2.254"},
		{"ipv4", transitPfx.String(), fmt.Sprintf("%d,%d", targetAS, otherAS), "192.0.2.254"},
		{"ipv6", target6Pfx.String(), fmt.Sprint(targetAS), "2001:db8::1"},
	} {
		if _, err := up.Cmd(ctx, "global", "rib", "add", "-a", r.fam, r.pfx, "aspath", r.path, "nexthop", r.nh); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOrigins asserts the Updates of peer for the lab's routes: the
// target's with the target origin, the other's with the other origin, the
// transit route with the other origin and the target inside its path.
func checkOrigins(t *testing.T, c *collector, router, peer netip.Addr, peerAS uint32, path func(...uint32) []uint32, skip ...netip.Prefix) {
	t.Helper()
	for _, w := range []struct {
		pfx    netip.Prefix
		origin uint32
		path   []uint32
	}{
		{targetPfx, targetAS, path(targetAS)},
		{otherPfx, otherAS, path(otherAS)},
		{transitPfx, otherAS, path(targetAS, otherAS)},
		{target6Pfx, targetAS, path(targetAS)},
	} {
		if slices.Contains(skip, w.pfx) {
			continue
		}
		u := waitUpdate(t, c, fmt.Sprintf("%s from %s", w.pfx, peer), func(u bmp.Update) bool {
			return u.Router == router && u.Peer == peer && u.Prefix == w.pfx && !u.Withdraw
		})
		if u.Origin != w.origin || !slices.Equal(u.Path, w.path) || u.PeerAS != peerAS {
			t.Errorf("%s from %s: origin %d path %v peer AS %d, want origin %d path %v peer AS %d", w.pfx, peer, u.Origin, u.Path, u.PeerAS, w.origin, w.path, peerAS)
		}
		if u.At.IsZero() {
			t.Errorf("%s: no time", w.pfx)
		}
	}
}

// TestGoBGPdReportsOverBMP: gobgpd's BMP client reports what a gobgpd
// upstream sends it, in all three views (pre-policy, post-policy and its
// Loc-RIB, RFC 9069), and the withdrawal.
func TestGoBGPdReportsOverBMP(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "gobgpd", "gobgp")
	rcv, col, _ := startReceiver(t, bmp.Config{})
	raddr, rport := receiverPort(rcv)

	upAddr := lab.Loopback(t)
	rtrAddr := lab.Loopback(t)
	rtr := lab.StartGoBGPd(t, lab.Config{Addr: rtrAddr, ASN: routerAS,
		Sessions: []lab.Session{{Addr: upAddr, ASN: upstreamAS, Passive: true}},
		BMP:      []lab.BMPStation{{Addr: netip.AddrPortFrom(raddr, uint16(rport)), Policy: "all", Name: "lab-gobgpd"}}})
	up := lab.StartGoBGPd(t, lab.Config{Addr: upAddr, ASN: upstreamAS,
		Sessions: []lab.Session{{Addr: rtrAddr, Port: rtr.Port(), ASN: routerAS}}})
	announceUpstream(t, up)
	lab.WaitEstablished(t, context.Background(), rtr, upAddr, 60*time.Second)

	// gobgpd reaches the receiver from 127.0.0.1 (the kernel's source for
	// 127.0.0.0/8).
	bmpFrom := netip.MustParseAddr("127.0.0.1")
	st := waitStatus(t, rcv, bmpFrom, "the router with its routes", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateUp && s.Routes == 8 && s.Peers == 2
	})
	if st.Name != "lab-gobgpd" || st.Connections != 1 || st.Errors != 0 || st.Messages == 0 || st.LastMessage.IsZero() {
		t.Errorf("status %+v", st)
	}
	checkOrigins(t, col, bmpFrom, upAddr, upstreamAS, func(as ...uint32) []uint32 { return append([]uint32{upstreamAS}, as...) })
	checkOrigins(t, col, bmpFrom, netip.IPv4Unspecified(), routerAS, func(as ...uint32) []uint32 { return append([]uint32{upstreamAS}, as...) })

	seen := rcv.Lookup(targetPfx)
	if len(seen) != 2 {
		t.Fatalf("Lookup(%s) = %+v, want the upstream peer and the Loc-RIB", targetPfx, seen)
	}
	loc, adj := seen[0], seen[1] // ordered by peer: 0.0.0.0 first
	if !loc.LocRIB || loc.PrePolicy || loc.Origin != targetAS || loc.PeerAS != routerAS {
		t.Errorf("Loc-RIB entry %+v", loc)
	}
	if adj.Peer != upAddr || !adj.PrePolicy || !adj.PostPolicy || adj.LocRIB || adj.Origin != targetAS || adj.First.IsZero() {
		t.Errorf("Adj-RIB-In entry %+v", adj)
	}
	if s := rcv.Lookup(netip.MustParsePrefix("203.0.113.0/25")); len(s) != 0 {
		t.Errorf("Lookup of a prefix nobody carries: %+v", s)
	}

	// A withdrawal at the upstream is reported for the peer and the
	// Loc-RIB, with the origin the route had.
	if _, err := up.Cmd(context.Background(), "global", "rib", "del", "-a", "ipv4", targetPfx.String()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Addr{upAddr, netip.IPv4Unspecified()} {
		u := waitUpdate(t, col, "the withdrawal from "+p.String(), func(u bmp.Update) bool {
			return u.Peer == p && u.Prefix == targetPfx && u.Withdraw
		})
		if u.Origin != targetAS {
			t.Errorf("withdrawal %+v: want origin %d", u, targetAS)
		}
	}
	waitStatus(t, rcv, bmpFrom, "6 routes", func(s bmp.RouterStatus) bool { return s.Routes == 6 })
	if s := rcv.Lookup(targetPfx); len(s) != 0 {
		t.Errorf("Lookup after the withdrawal: %+v", s)
	}

	// The router goes away: its routes are withdrawn, its status is down.
	rtr.Stop()
	waitStatus(t, rcv, bmpFrom, "the router down", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateDown && s.Routes == 0 && s.Peers == 0
	})
	waitUpdate(t, col, "the withdrawal of the other route", func(u bmp.Update) bool {
		return u.Peer == upAddr && u.Prefix == otherPfx && u.Withdraw && u.Origin == otherAS
	})
	if s := rcv.Lookup(otherPfx); len(s) != 0 {
		t.Errorf("Lookup after the router left: %+v", s)
	}
}

// TestFRRReportsOverBMP: FRR's bmp module reports what a gobgpd upstream
// sends it, before and after its import policy (which rejects the other
// origin's route), and the upstream's withdrawal.
func TestFRRReportsOverBMP(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "gobgpd", "gobgp", lab.FRRBgpd, "vtysh")
	rcv, col, _ := startReceiver(t, bmp.Config{})
	raddr, rport := receiverPort(rcv)

	upAddr := lab.Loopback(t)
	rtrAddr := lab.Loopback(t)
	rtr := lab.StartFRR(t, lab.Config{Addr: rtrAddr, ASN: routerAS,
		Extra:    "ip prefix-list LAB-OTHER seq 5 permit " + otherPfx.String() + "\nroute-map LAB-IN deny 10\n match ip address prefix-list LAB-OTHER\nexit\nroute-map LAB-IN permit 20\nexit\n",
		Sessions: []lab.Session{{Addr: upAddr, ASN: upstreamAS, Passive: true, Import: "LAB-IN"}},
		BMP:      []lab.BMPStation{{Addr: netip.AddrPortFrom(raddr, uint16(rport)), Policy: "both"}}})
	up := lab.StartGoBGPd(t, lab.Config{Addr: upAddr, ASN: upstreamAS,
		Sessions: []lab.Session{{Addr: rtrAddr, Port: rtr.Port(), ASN: routerAS}}})
	announceUpstream(t, up)
	lab.WaitEstablished(t, context.Background(), rtr, upAddr, 60*time.Second)

	bmpFrom := netip.MustParseAddr("127.0.0.1")
	t.Cleanup(func() {
		if t.Failed() {
			for _, u := range col.find(func(bmp.Update) bool { return true }) {
				t.Logf("update %+v", u)
			}
		}
	})
	// FRR 8.4 reports the route its import policy rejects as withdrawn in
	// both views, pre-policy too (it reads pre-policy routes from its
	// Adj-RIB-In after the policy ran): 3 routes.
	st := waitStatus(t, rcv, bmpFrom, "the router with its routes", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateUp && s.Routes == 3 && s.Peers == 1
	})
	if st.Name == "" || st.Connections != 1 || st.Errors != 0 {
		t.Errorf("status %+v", st)
	}
	// FRR 8.4 prepends its own AS to the paths it reports, as if it sent
	// them to a peer (FRR pull request 21815); the origin is unchanged.
	checkOrigins(t, col, bmpFrom, upAddr, upstreamAS, func(as ...uint32) []uint32 { return append([]uint32{routerAS, upstreamAS}, as...) }, otherPfx)

	// Both views hold the accepted routes.
	err := lab.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		if s := rcv.Lookup(otherPfx); len(s) != 0 {
			return fmt.Errorf("Lookup(%s) = %+v, want nothing", otherPfx, s)
		}
		for _, w := range []struct {
			pfx       netip.Prefix
			pre, post bool
		}{{targetPfx, true, true}, {transitPfx, true, true}, {target6Pfx, true, true}} {
			s := rcv.Lookup(w.pfx)
			if len(s) != 1 || s[0].Peer != upAddr || s[0].PrePolicy != w.pre || s[0].PostPolicy != w.post || s[0].LocRIB {
				return fmt.Errorf("Lookup(%s) = %+v, want pre %t post %t", w.pfx, s, w.pre, w.post)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := up.Cmd(context.Background(), "global", "rib", "del", "-a", "ipv4", targetPfx.String()); err != nil {
		t.Fatal(err)
	}
	u := waitUpdate(t, col, "the withdrawal", func(u bmp.Update) bool {
		return u.Peer == upAddr && u.Prefix == targetPfx && u.Withdraw
	})
	if u.Origin != targetAS {
		t.Errorf("withdrawal %+v: want origin %d", u, targetAS)
	}
	waitStatus(t, rcv, bmpFrom, "2 routes", func(s bmp.RouterStatus) bool { return s.Routes == 2 })

	// The upstream goes away: FRR reports the peer down, its routes go.
	up.Stop()
	waitStatus(t, rcv, bmpFrom, "the peer down", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateUp && s.Routes == 0 && s.Peers == 0
	})
	waitUpdate(t, col, "the withdrawal of the transit route", func(u bmp.Update) bool {
		return u.Peer == upAddr && u.Prefix == transitPfx && u.Withdraw && u.Origin == otherAS
	})
}
