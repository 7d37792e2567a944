package bmp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/bmp"
)

// proxy forwards the connections a router makes to addr (a fresh loopback
// address) to the receiver, from the local address from: on loopback every
// router reaches the receiver from 127.0.0.1, and the receiver tells
// routers apart by address.
func proxy(b *testing.B, to string, from netip.Addr) netip.AddrPort {
	b.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(lab.Loopback(b), 0).String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
			up, err := d.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// BenchmarkBMPFullTable: an FRR router (bgpd with its bmp module) learns
// a full-size table from a BIRD upstream (the static routes in
// BMP_BENCH_STATICS, from scripts/mkrib -bird: prefixes and AS paths of
// the real RIS tables, split into more-specifics up to the asked size)
// and sends it both to a BIRD over BGP and to the receiver over BMP
// (pre-policy). It reports the time from the router's session with the
// upstream coming up until the receiver held every route, next to the
// time until BIRD held them; then a second FRR router sends the receiver
// the same table, and the process's memory is read (peak and current RSS,
// live heap). The table is complete when the receiver holds, for each
// router, as many routes as the reference BIRD received.
func BenchmarkBMPFullTable(b *testing.B) {
	statics := os.Getenv("BMP_BENCH_STATICS")
	if statics == "" {
		b.Skip("BMP_BENCH_STATICS (BIRD static protocols static4 and static6, from scripts/mkrib -bird) is not set")
	}
	lab.Require(b, lab.FRRBgpd, "vtysh", "bird", "birdc")
	for range b.N {
		benchFullTable(b, statics)
	}
}

// frrAllowAll is an FRR route-map that sends everything (lab's FRR sends
// nothing without one), IPv6 routes with an IPv6 next hop (over an IPv4
// session FRR has none of its own to send).
const frrAllowAll = "route-map BENCH-ALL permit 1\n set ipv6 next-hop global 2001:db8::2\nexit\n"

func benchFullTable(b *testing.B, statics string) {
	ctx := context.Background()
	both := []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}
	r1Addr, r2Addr, upAddr, birdAddr := lab.Loopback(b), lab.Loopback(b), lab.Loopback(b), lab.Loopback(b)
	// The upstream holds the whole table before any router connects (the
	// routers dial it; it is passive). Its sessions are written here: FRR
	// refuses a loopback next hop (martian), and IPv6 routes over IPv4
	// sessions need an IPv6 next hop of their own.
	upPort := lab.FreePort(b, upAddr)
	var upConf strings.Builder
	fmt.Fprintf(&upConf, "include %q;\n", statics)
	for i, r := range []struct {
		addr netip.Addr
		as   uint32
	}{{r1Addr, routerAS}, {r2Addr, routerAS + 1}} {
		fmt.Fprintf(&upConf, `protocol bgp router%d {
  local %s port %d as %d; neighbor %s as %d; multihop; strict bind on; passive on;
  ipv4 { import none; export all; next hop address 192.0.2.254; };
  ipv6 { import none; export all; next hop address 2001:db8::1; };
}
`, i, upAddr, upPort, upstreamAS, r.addr, r.as)
	}
	up := lab.StartBIRD(b, lab.Config{Addr: upAddr, Port: upPort, ASN: upstreamAS, Extra: upConf.String(), StartTimeout: 15 * time.Minute})
	total := staticRoutes(b, up)

	l := logrus.New()
	l.SetOutput(io.Discard)
	var updates atomic.Int64
	rcv, err := bmp.New(bmp.Config{Listen: netip.AddrPortFrom(lab.Loopback(b), 0).String(), MaxRoutesPerRouter: 2 * total, Logger: logrus.NewEntry(l)},
		func(us []bmp.Update) { updates.Add(int64(len(us))) })
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rcv.Serve(sctx) }()
	b.Cleanup(func() { cancel(); <-done })
	id1, id2 := netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.0.12")
	p1, p2 := proxy(b, rcv.Addr().String(), id1), proxy(b, rcv.Addr().String(), id2)

	bird := lab.StartBIRD(b, lab.Config{Addr: birdAddr, ASN: 65020,
		Sessions: []lab.Session{{Addr: r1Addr, ASN: routerAS, Passive: true, Families: both}}})
	r1 := lab.StartFRR(b, lab.Config{Addr: r1Addr, ASN: routerAS, Extra: frrAllowAll,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS, Families: both},
			{Addr: birdAddr, Port: bird.Port(), ASN: 65020, Export: "BENCH-ALL", Families: both}},
		BMP: []lab.BMPStation{{Addr: p1, Policy: "pre-policy"}}})
	t0 := waitUp(b, r1, upAddr)
	// Each time is when its count last grew; the table is complete when
	// BIRD's count and the receiver's are equal and have not changed for
	// 15 s.
	var nBMP, nBIRD int
	var tBMP, tBIRD time.Duration
	stall := newStall(b, 3*time.Minute)
	for {
		now := time.Since(t0)
		if n := routesOf(rcv, id1); n != nBMP {
			nBMP, tBMP = n, now
		}
		n := 0
		for _, f := range both {
			st, err := bird.ChannelStats(ctx, r1Addr, f)
			if err != nil {
				b.Fatal(err)
			}
			n += st.Imported
		}
		if n != nBIRD {
			nBIRD, tBIRD = n, now
		}
		if nBMP == nBIRD && nBMP > 0 && now-max(tBMP, tBIRD) > 15*time.Second {
			break
		}
		stall.check(fmt.Sprintf("receiver %d, BIRD %d of %d routes", nBMP, nBIRD, total))
		time.Sleep(50 * time.Millisecond)
	}
	if nBMP != total {
		b.Logf("the router passed on %d of the upstream's %d routes", nBMP, total)
	}
	total = nBMP

	// The second router: the receiver then holds the table twice.
	r2 := lab.StartFRR(b, lab.Config{Addr: r2Addr, ASN: routerAS + 1,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS, Families: both}},
		BMP:      []lab.BMPStation{{Addr: p2, Policy: "pre-policy"}}})
	t2 := waitUp(b, r2, upAddr)
	stall = newStall(b, 3*time.Minute)
	for n := routesOf(rcv, id2); n < total; n = routesOf(rcv, id2) {
		stall.check(fmt.Sprintf("receiver %d of %d routes from the second router", n, total))
		time.Sleep(50 * time.Millisecond)
	}
	tBMP2 := time.Since(t2)
	hwm := procStatus(b, "VmHWM")
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := procStatus(b, "VmRSS")
	v6 := 0
	if st, err := bird.ChannelStats(ctx, r1Addr, lab.IPv6Unicast); err == nil {
		v6 = st.Imported
	}
	b.ReportMetric(float64(total), "routes")
	b.ReportMetric(float64(v6), "ipv6-routes")
	b.ReportMetric(tBMP.Seconds(), "bmp-s")
	b.ReportMetric(tBIRD.Seconds(), "bird-s")
	b.ReportMetric(tBMP.Seconds()/tBIRD.Seconds(), "ratio")
	b.ReportMetric(tBMP2.Seconds(), "bmp2-s")
	b.ReportMetric(hwm/1024, "peak-rss-MiB")
	b.ReportMetric(rss/1024, "rss-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(ms.HeapInuse)/float64(2*total), "heap-B/route")
	if u := updates.Load(); u < int64(2*total) {
		b.Errorf("%d updates for %d routes from two routers", u, total)
	}
	r1.Stop()
	r2.Stop()
}

// staticRoutes waits until BIRD has loaded its static routes (static4
// and static6) and returns how many it holds.
func staticRoutes(b *testing.B, bird *lab.BIRD) int {
	b.Helper()
	var n int
	err := lab.Eventually(context.Background(), 10*time.Minute, func(ctx context.Context) error {
		n = 0
		for _, p := range []string{"static4", "static6"} {
			out, err := bird.Cmd(ctx, "show", "protocols", "all", p)
			if err != nil {
				return err
			}
			i := strings.Index(out, "Routes:")
			if i < 0 {
				return fmt.Errorf("%s not up: %s", p, out)
			}
			var imported int
			if _, err := fmt.Sscanf(out[i:], "Routes: %d imported", &imported); err != nil {
				return fmt.Errorf("%s: %v", p, err)
			}
			n += imported
		}
		if n == 0 {
			return errors.New("no static routes yet")
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// stall fails the benchmark when the progress it is shown stays the same
// for too long.
type stall struct {
	b     *testing.B
	limit time.Duration
	last  string
	since time.Time
}

func newStall(b *testing.B, limit time.Duration) *stall {
	return &stall{b: b, limit: limit, since: time.Now()}
}

func (s *stall) check(progress string) {
	if progress != s.last {
		s.last, s.since = progress, time.Now()
		return
	}
	if time.Since(s.since) > s.limit {
		s.b.Fatalf("no progress for %s: %s", s.limit, progress)
	}
}

// waitUp waits until router r has its session with the upstream up and
// returns when it saw it.
func waitUp(b *testing.B, r lab.Peer, upstream netip.Addr) time.Time {
	b.Helper()
	var at time.Time
	err := lab.Eventually(context.Background(), 5*time.Minute, func(ctx context.Context) error {
		si, err := r.Session(ctx, upstream)
		if err != nil {
			return err
		}
		if !si.Established {
			return fmt.Errorf("session with the upstream: %s", si.State)
		}
		at = time.Now()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return at
}

func routesOf(r *bmp.Receiver, router netip.Addr) int {
	for _, s := range r.Status() {
		if s.Addr == router {
			return s.Routes
		}
	}
	return 0
}

// procStatus reads a memory field of /proc/self/status in KiB.
func procStatus(b *testing.B, field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
