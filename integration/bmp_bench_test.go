package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
)

// TestBMPFullTableBench is a measurement for `make bench`
// (scripts/bench-bmp.sh), run only with ASFENCE_BENCH=1: an FRR router
// (bgpd with its bmp module) learns a full-size table from a BIRD
// upstream (the static routes in BMP_BENCH_STATICS, from scripts/mkrib
// -bird: prefixes and AS paths of the real RIS tables, split into
// more-specifics up to the asked size) and sends it both to a BIRD over
// BGP and to the asfence daemon over BMP (pre-policy). It measures the
// time from the router's session with the upstream coming up until the
// daemon held every route (its /api/v1/bmp count for the router), next to
// the time until BIRD held them; then a second FRR router sends the daemon
// the same table, and the daemon process's memory is read. The table is
// complete when the daemon holds, for each router, as many routes as the
// reference BIRD received. It logs one line "bmp-full-table key=value
// ...", and asserts only the counts.
//
// Every router on loopback reaches the daemon from 127.0.0.1, and routers
// are told apart by their address: each reaches it through a forwarder
// that connects from an address of its own (127.0.0.11, 127.0.0.12).
func TestBMPFullTableBench(t *testing.T) {
	if os.Getenv("ASFENCE_BENCH") == "" {
		t.Skip("a benchmark: ASFENCE_BENCH=1 runs it")
	}
	statics := os.Getenv("BMP_BENCH_STATICS")
	if statics == "" {
		t.Fatal("BMP_BENCH_STATICS (BIRD static protocols static4 and static6, from scripts/mkrib -bird) is not set")
	}
	lab.Require(t, lab.FRRBgpd, "vtysh", "bird", "birdc")
	const upstreamAS, routerAS = 64500, 65010
	ctx := context.Background()
	both := []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}

	// The daemon, with its BMP receiver; routes of target origins (if the
	// table has any) are held for approval, not applied.
	w := newDaemonLab(t, "@every 24h", "")
	bmpAddr := netip.AddrPortFrom(w.addr, uint16(lab.FreePort(t, w.addr)))
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = fmt.Appendf(cfg, "bmp:\n  listen: %s\nwatch:\n  max_additions: 0\n", bmpAddr)
	if err := os.WriteFile(w.cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	w.start("--offline")
	w.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 && r.Outcome == store.Applied })
	id1, id2 := netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.0.12")
	p1, p2 := forwarder(t, bmpAddr, id1), forwarder(t, bmpAddr, id2)

	// The upstream holds the whole table before any router connects (the
	// routers dial it; it is passive). Its sessions are written here: FRR
	// refuses a loopback next hop (martian), and IPv6 routes over IPv4
	// sessions need an IPv6 next hop of their own.
	r1Addr, r2Addr, upAddr, birdAddr := lab.Loopback(t), lab.Loopback(t), lab.Loopback(t), lab.Loopback(t)
	upPort := lab.FreePort(t, upAddr)
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
	up := lab.StartBIRD(t, lab.Config{Addr: upAddr, Port: upPort, ASN: upstreamAS, Extra: upConf.String(), StartTimeout: 15 * time.Minute})
	total := staticRoutes(t, up)

	// FRR sends nothing without an export route-map, and over an IPv4
	// session it has no IPv6 next hop of its own to send.
	const allowAll = "route-map BENCH-ALL permit 1\n set ipv6 next-hop global 2001:db8::2\nexit\n"
	bird := lab.StartBIRD(t, lab.Config{Addr: birdAddr, ASN: 65020,
		Sessions: []lab.Session{{Addr: r1Addr, ASN: routerAS, Passive: true, Families: both}}})
	r1 := lab.StartFRR(t, lab.Config{Addr: r1Addr, ASN: routerAS, Extra: allowAll,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS, Families: both},
			{Addr: birdAddr, Port: bird.Port(), ASN: 65020, Export: "BENCH-ALL", Families: both}},
		BMP: []lab.BMPStation{{Addr: p1, Policy: "pre-policy"}}})
	lab.WaitEstablished(t, ctx, r1, upAddr, 5*time.Minute)
	start := time.Now()
	// Each time is when its count last grew; the table is complete when
	// BIRD's count and the daemon's are equal and have not changed for
	// 15 s.
	var nBMP, nBIRD int
	var tBMP, tBIRD time.Duration
	progress := newProgress(t, 3*time.Minute)
	for {
		now := time.Since(start)
		if n := w.bmpRoutes(id1); n != nBMP {
			nBMP, tBMP = n, now
		}
		n := 0
		for _, f := range both {
			st, err := bird.ChannelStats(ctx, r1Addr, f)
			if err != nil {
				t.Fatal(err)
			}
			n += st.Imported
		}
		if n != nBIRD {
			nBIRD, tBIRD = n, now
		}
		if nBMP == nBIRD && nBMP > 0 && now-max(tBMP, tBIRD) > 15*time.Second {
			break
		}
		progress.check(fmt.Sprintf("daemon %d, BIRD %d of %d routes", nBMP, nBIRD, total))
		time.Sleep(50 * time.Millisecond)
	}
	v6, err := bird.ChannelStats(ctx, r1Addr, lab.IPv6Unicast)
	if err != nil {
		t.Fatal(err)
	}

	// The second router: the daemon then holds the table twice.
	r2 := lab.StartFRR(t, lab.Config{Addr: r2Addr, ASN: routerAS + 1,
		Sessions: []lab.Session{{Addr: upAddr, Port: up.Port(), ASN: upstreamAS, Families: both}},
		BMP:      []lab.BMPStation{{Addr: p2, Policy: "pre-policy"}}})
	lab.WaitEstablished(t, ctx, r2, upAddr, 5*time.Minute)
	start2 := time.Now()
	progress = newProgress(t, 3*time.Minute)
	for n := w.bmpRoutes(id2); n < nBMP; n = w.bmpRoutes(id2) {
		progress.check(fmt.Sprintf("daemon %d of %d routes from the second router", n, nBMP))
		time.Sleep(50 * time.Millisecond)
	}
	tBMP2 := time.Since(start2)
	pid := w.proc.cmd.Process.Pid
	hwm, rss := procField(t, pid, "VmHWM"), procField(t, pid, "VmRSS")
	if nBMP != total {
		t.Logf("the router passed on %d of the upstream's %d routes", nBMP, total)
	}
	t.Logf("bmp-full-table routes=%d ipv6=%d bmp-s=%.2f bird-s=%.2f ratio=%.3f bmp2-s=%.2f peak-rss-MiB=%.2f rss-MiB=%.2f",
		nBMP, v6.Imported, tBMP.Seconds(), tBIRD.Seconds(), tBMP.Seconds()/tBIRD.Seconds(), tBMP2.Seconds(), hwm/1024, rss/1024)
	r1.Stop()
	r2.Stop()
}

// bmpRoutes is the daemon's count of routes held for a BMP router
// (/api/v1/bmp), 0 while it is not listed.
func (l *daemonLab) bmpRoutes(router netip.Addr) int {
	b, err := l.client.BMP(context.Background())
	if err != nil {
		return 0
	}
	for _, r := range b.Routers {
		if r.Address == router.String() {
			return r.Routes
		}
	}
	return 0
}

// forwarder forwards the connections a router makes to a fresh loopback
// address to the daemon's BMP receiver at to, from the local address
// from.
func forwarder(t *testing.T, to netip.AddrPort, from netip.Addr) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(lab.Loopback(t), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
			up, err := d.Dial("tcp", to.String())
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

// staticRoutes waits until BIRD has loaded its static routes (static4
// and static6) and returns how many it holds.
func staticRoutes(t *testing.T, bird *lab.BIRD) int {
	t.Helper()
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
		t.Fatal(err)
	}
	return n
}

// progress fails the test when the progress it is shown stays the same
// for too long.
type progress struct {
	t     *testing.T
	limit time.Duration
	last  string
	since time.Time
}

func newProgress(t *testing.T, limit time.Duration) *progress {
	return &progress{t: t, limit: limit, since: time.Now()}
}

func (p *progress) check(now string) {
	if now != p.last {
		p.last, p.since = now, time.Now()
		return
	}
	if time.Since(p.since) > p.limit {
		p.t.Fatalf("no progress for %s: %s", p.limit, now)
	}
}

// procField reads a memory field of /proc/PID/status in KiB.
func procField(t *testing.T, pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
