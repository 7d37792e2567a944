package bmp_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// BenchmarkBMPFullTable: a gobgpd router learns a full-size table from a
// gobgpd upstream (the MRT RIB in BMP_BENCH_RIB, injected) and sends it
// both to a BIRD over BGP and to the receiver over BMP (pre-policy). It
// reports the time from the router's session with the upstream coming up
// until the receiver held every route, next to the time until BIRD held
// them; then a second gobgpd router sends the receiver the same table, and
// the process's memory is read (peak and current RSS, live heap).
func BenchmarkBMPFullTable(b *testing.B) {
	rib := os.Getenv("BMP_BENCH_RIB")
	if rib == "" {
		b.Skip("BMP_BENCH_RIB (an MRT RIB dump, e.g. from scripts/mkrib) is not set")
	}
	lab.Require(b, "gobgpd", "gobgp", "bird", "birdc")
	for range b.N {
		benchFullTable(b, rib)
	}
}

func benchFullTable(b *testing.B, rib string) {
	ctx := context.Background()
	// The upstream, with the table injected before any router connects.
	dir := lab.Dir(b)
	mrt := filepath.Join(dir, "rib.mrt")
	if err := gunzip(rib, mrt); err != nil {
		b.Fatal(err)
	}
	r1Addr, r2Addr, upAddr, birdAddr := lab.Loopback(b), lab.Loopback(b), lab.Loopback(b), lab.Loopback(b)
	up := lab.StartGoBGPd(b, lab.Config{Addr: upAddr, ASN: upstreamAS, Sessions: []lab.Session{
		{Addr: r1Addr, ASN: routerAS, Passive: true}, {Addr: r2Addr, ASN: routerAS + 1, Passive: true}}})
	ictx, icancel := context.WithTimeout(ctx, 60*time.Minute)
	api := up.API()
	out, err := exec.CommandContext(ictx, "gobgp", "-u", api.Addr().String(), "-p", strconv.Itoa(int(api.Port())), "mrt", "inject", "global", mrt).CombinedOutput()
	icancel()
	if err != nil {
		b.Fatalf("gobgp mrt inject: %v: %s", err, out)
	}
	os.Remove(mrt)
	// Counting the upstream's routes through its CLI takes minutes on a
	// loaded machine: the script says how many prefixes the RIB has (one
	// entry each).
	total, err := strconv.Atoi(os.Getenv("BMP_BENCH_ROUTES"))
	if err != nil || total <= 0 {
		b.Fatalf("BMP_BENCH_ROUTES: want the number of prefixes in %s", rib)
	}

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
		Sessions: []lab.Session{{Addr: r1Addr, ASN: routerAS, Passive: true}}})
	r1 := lab.StartGoBGPd(b, lab.Config{Addr: r1Addr, ASN: routerAS,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS}, {Addr: birdAddr, Port: bird.Port(), ASN: 65020}},
		BMP:      []lab.BMPStation{{Addr: p1, Policy: "pre-policy"}}})
	t0 := waitUp(b, r1, upAddr)
	// The table is complete when BIRD's count and the receiver's are equal
	// and have not changed for 15 s (gobgpd drops a few of the generated
	// prefixes); each time is when its count last grew.
	var nBMP, nBIRD int
	var tBMP, tBIRD time.Duration
	stall := newStall(b, 3*time.Minute)
	for {
		now := time.Since(t0)
		if n := routesOf(rcv, id1); n != nBMP {
			nBMP, tBMP = n, now
		}
		n := 0
		for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast} {
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
		stall.check(fmt.Sprintf("receiver %d, BIRD %d of about %d routes", nBMP, nBIRD, total))
		time.Sleep(50 * time.Millisecond)
	}
	total = nBMP

	// The second router: the receiver then holds the table twice.
	r2 := lab.StartGoBGPd(b, lab.Config{Addr: r2Addr, ASN: routerAS + 1,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS}},
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
	b.ReportMetric(float64(total), "routes")
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
func waitUp(b *testing.B, r *lab.GoBGPd, upstream netip.Addr) time.Time {
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

func gunzip(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", from, err)
	}
	return out.Close()
}
