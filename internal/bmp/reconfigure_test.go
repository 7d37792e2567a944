package bmp_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/bmp"
)

// TestReconfigureWithFRR changes a running receiver's configuration under
// an FRR router reporting over BMP: a new listen address keeps the
// router's session and routes (the old address no longer answers, the new
// one does); a lower route limit drops the router over it; an allow-list
// without the router drops it and refuses its reconnections; a bad
// configuration changes nothing.
func TestReconfigureWithFRR(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "gobgpd", "gobgp", lab.FRRBgpd, "vtysh")
	bmpFrom := netip.MustParseAddr("127.0.0.1") // FRR reaches the receiver from 127.0.0.1
	listenA := netip.AddrPortFrom(lab.Loopback(t), 0).String()
	cfg := bmp.Config{Listen: listenA, Routers: []netip.Addr{bmpFrom}}
	rcv, col, logs := startReceiver(t, cfg)
	a := rcv.Addr().String()
	cfg.Listen = a // its port, to come back to

	upAddr, rtrAddr := lab.Loopback(t), lab.Loopback(t)
	rtr := lab.StartFRR(t, lab.Config{Addr: rtrAddr, ASN: routerAS,
		Sessions: []lab.Session{{Addr: upAddr, ASN: upstreamAS, Passive: true}},
		BMP:      []lab.BMPStation{{Addr: netip.MustParseAddrPort(a), Policy: "pre-policy"}}})
	up := lab.StartGoBGPd(t, lab.Config{Addr: upAddr, ASN: upstreamAS,
		Sessions: []lab.Session{{Addr: rtrAddr, Port: rtr.Port(), ASN: routerAS}}})
	announceUpstream(t, up)
	lab.WaitEstablished(t, context.Background(), rtr, upAddr, 60*time.Second)
	full := func(s bmp.RouterStatus) bool { return s.State == bmp.StateUp && s.Routes == 4 }
	st := waitStatus(t, rcv, bmpFrom, "the router with its 4 routes", full)

	// A new listen address: the router's session goes on.
	bAddr := lab.Loopback(t)
	b := netip.AddrPortFrom(bAddr, uint16(lab.FreePort(t, bAddr))).String()
	moved := cfg
	moved.Listen = b
	if err := rcv.Reconfigure(moved); err != nil {
		t.Fatal(err)
	}
	if got := rcv.Addr().String(); got != b {
		t.Fatalf("listening on %s, want %s", got, b)
	}
	if c, err := net.DialTimeout("tcp", a, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the old address %s still accepts connections", a)
	}
	// A connection to the new address from an address not allowed is
	// refused (and so shows the new listener accepts).
	other := netip.MustParseAddr("127.0.0.77")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: other.AsSlice()}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", b)
	if err != nil {
		t.Fatalf("dial the new address %s: %v", b, err)
	}
	c.Close()
	waitStatus(t, rcv, other, "the refusal on the new address", func(s bmp.RouterStatus) bool { return s.State == bmp.StateRefused })
	if s := waitStatus(t, rcv, bmpFrom, "the router still up", full); s.Connections != st.Connections || !s.Since.Equal(st.Since) {
		t.Errorf("the router's session changed with the listener: %+v, was %+v", s, st)
	}
	// And back to the first address (the router reconnects there).
	if err := rcv.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}

	// A bad configuration changes nothing.
	for _, bad := range []bmp.Config{
		{Listen: "127.0.0.1:notaport", Routers: cfg.Routers},
		{Listen: a, Routers: cfg.Routers, MaxRoutesPerRouter: -1},
		{Listen: a, Routers: []netip.Addr{{}}},
	} {
		if err := rcv.Reconfigure(bad); err == nil {
			t.Errorf("Reconfigure(%+v) accepted", bad)
		}
	}
	if got := rcv.Addr().String(); got != a {
		t.Fatalf("after bad configurations: listening on %s, want %s", got, a)
	}
	st = waitStatus(t, rcv, bmpFrom, "the router up with its routes", full)

	// A lower route limit drops the router over it at once.
	low := cfg
	low.MaxRoutesPerRouter = 3
	if err := rcv.Reconfigure(low); err != nil {
		t.Fatal(err)
	}
	s := waitStatus(t, rcv, bmpFrom, "the router dropped over the new limit", func(s bmp.RouterStatus) bool {
		return strings.Contains(s.LastError, "more than the new limit of 3")
	})
	if !s.LastErrorAt.After(st.Since) {
		t.Errorf("status %+v", s)
	}
	waitUpdate(t, col, "the withdrawal of the dropped router's routes", func(u bmp.Update) bool {
		return u.Prefix == targetPfx && u.Withdraw
	})
	if !strings.Contains(logs.String(), "dropped the router: holds 4 routes, more than the new limit of 3") {
		t.Error("no log line for the router dropped over the new limit")
	}

	// Back to the default limit: the router reconnects with its routes.
	if err := rcv.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, rcv, bmpFrom, "the router back with its routes", full)

	// An allow-list without the router drops it, and refuses it after.
	none := cfg
	none.Routers = []netip.Addr{netip.MustParseAddr("127.0.0.9")}
	if err := rcv.Reconfigure(none); err != nil {
		t.Fatal(err)
	}
	s = waitStatus(t, rcv, bmpFrom, "the router refused", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateRefused && s.Routes == 0 && strings.Contains(s.LastError, "not in the allow-list")
	})
	if s.Connections != st.Connections {
		t.Errorf("a refused router's connection was accepted: %+v, was %+v", s, st)
	}
	if !strings.Contains(logs.String(), "dropped the router: no longer in the allow-list of routers (bmp.routers)") {
		t.Error("no log line for the router dropped from the allow-list")
	}
	if got := rcv.Lookup(targetPfx); len(got) != 0 {
		t.Errorf("Lookup after the router was dropped: %+v", got)
	}
}

// TestTwoRoutersFromOneAddress: an FRR router and a gobgpd router report
// from the same address (as two routers behind one NAT address would; on
// loopback both come from 127.0.0.1). Sessions are keyed by address: the
// second router, whose Initiation names another sysName, is refused with
// an error naming both, and the first keeps its session and routes
// instead of the two replacing each other.
func TestTwoRoutersFromOneAddress(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "gobgpd", "gobgp", lab.FRRBgpd, "vtysh")
	bmpFrom := netip.MustParseAddr("127.0.0.1")
	rcv, _, logs := startReceiver(t, bmp.Config{})
	station := netip.MustParseAddrPort(rcv.Addr().String())
	upAddr, frrAddr, gobgpAddr := lab.Loopback(t), lab.Loopback(t), lab.Loopback(t)
	frr := lab.StartFRR(t, lab.Config{Addr: frrAddr, ASN: routerAS,
		Sessions: []lab.Session{{Addr: upAddr, ASN: upstreamAS, Passive: true}},
		BMP:      []lab.BMPStation{{Addr: station, Policy: "pre-policy"}}})
	up := lab.StartGoBGPd(t, lab.Config{Addr: upAddr, ASN: upstreamAS,
		Sessions: []lab.Session{{Addr: frrAddr, Port: frr.Port(), ASN: routerAS}}})
	announceUpstream(t, up)
	st := waitStatus(t, rcv, bmpFrom, "FRR with its 4 routes", func(s bmp.RouterStatus) bool {
		return s.State == bmp.StateUp && s.Routes == 4
	})
	if st.Name != "lab" { // lab's FRR is "hostname lab"
		t.Fatalf("FRR's status %+v", st)
	}
	lab.StartGoBGPd(t, lab.Config{Addr: gobgpAddr, ASN: routerAS + 1,
		BMP: []lab.BMPStation{{Addr: station, Policy: "pre-policy", Name: "lab-gobgpd"}}})
	s := waitStatus(t, rcv, bmpFrom, "gobgpd refused", func(s bmp.RouterStatus) bool {
		return strings.Contains(s.LastError, `sysName "lab-gobgpd": router "lab" reports from this address`)
	})
	if s.State != bmp.StateUp || s.Name != "lab" || s.Connections != st.Connections || !s.Since.Equal(st.Since) || s.Routes != 4 {
		t.Errorf("FRR's session after gobgpd's connection: %+v, was %+v", s, st)
	}
	if !strings.Contains(logs.String(), "two routers behind one NAT address?") {
		t.Error("no log line for the refused second router")
	}
}
