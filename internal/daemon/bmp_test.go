package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/bmp"
)

// A reload applies a changed bmp: block under a real FRR router reporting
// over BMP: a listen address that cannot be bound is rejected and the
// receiver goes on as it was; a new address keeps the router's session; an
// allow-list without the router drops it; a lower route limit drops a
// router over it; no bmp: block stops the receiver, and one again starts
// it.
func TestReloadBMPWithFRR(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "gobgpd", "gobgp", lab.FRRBgpd, "vtysh")
	const routerAS, upstreamAS = 65010, 64500
	listen := func() string {
		a := lab.Loopback(t)
		return netip.AddrPortFrom(a, uint16(lab.FreePort(t, a))).String()
	}
	a := listen()
	h := newHarness(t, "")
	base, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	setBMP := func(block string) {
		t.Helper()
		if err := os.WriteFile(h.cfgPath, append(append([]byte{}, base...), block...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bmpBlock := func(listen, routers string, max int) string {
		return fmt.Sprintf("bmp:\n  listen: %s\n  routers: [%s]\n  max_routes_per_router: %d\n", listen, routers, max)
	}
	setBMP(bmpBlock(a, "127.0.0.1", 0))
	h.start()
	h.wait(1)
	ctx := context.Background()

	upAddr, rtrAddr := lab.Loopback(t), lab.Loopback(t)
	rtr := lab.StartFRR(t, lab.Config{Addr: rtrAddr, ASN: routerAS,
		Sessions: []lab.Session{{Addr: upAddr, ASN: upstreamAS, Passive: true}},
		BMP:      []lab.BMPStation{{Addr: netip.MustParseAddrPort(a), Policy: "pre-policy"}}})
	up := lab.StartGoBGPd(t, lab.Config{Addr: upAddr, ASN: upstreamAS,
		Sessions: []lab.Session{{Addr: rtrAddr, Port: rtr.Port(), ASN: routerAS}}})
	for _, p := range []string{"203.0.113.0/24", "198.51.100.0/24"} {
		if _, err := up.Cmd(ctx, "global", "rib", "add", "-a", "ipv4", p, "aspath", "396986", "nexthop", "192.0.2.254"); err != nil {
			t.Fatal(err)
		}
	}
	// FRR reaches the receiver from 127.0.0.1 (the kernel's source for
	// 127.0.0.0/8).
	router := func(what string, ok func(api.BMPRouter) bool) api.BMPRouter {
		t.Helper()
		var last api.BMPRouter
		err := lab.Eventually(ctx, testDeadline, func(ctx context.Context) error {
			b, err := h.client.BMP(ctx)
			if err != nil {
				return err
			}
			for _, r := range b.Routers {
				if r.Address == "127.0.0.1" {
					if last = r; ok(r) {
						return nil
					}
					return fmt.Errorf("router %+v", r)
				}
			}
			return fmt.Errorf("no router 127.0.0.1 in %+v", b.Routers)
		})
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return last
	}
	full := func(r api.BMPRouter) bool { return r.State == bmp.StateUp && r.Routes == 2 }
	st := router("the router up with its 2 routes", full)

	// A listen address in use: rejected, the receiver goes on at a.
	busy, err := net.Listen("tcp", listen())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	setBMP(bmpBlock(busy.Addr().String(), "127.0.0.1", 0))
	if err := h.d.Reload(ctx); err == nil {
		t.Fatal("a reload with a listen address in use was accepted")
	}
	if got := h.d.receiver().Addr().String(); got != a || h.d.config().BMP.Listen != a {
		t.Fatalf("after the rejected reload: listening on %s, config %s; want %s", got, h.d.config().BMP.Listen, a)
	}
	if !strings.Contains(h.logs.String(), "reload rejected: the BMP receiver cannot take the new bmp: block") {
		t.Error("the rejected reload was not logged")
	}

	// A bmp: block the config rejects: nothing changes.
	setBMP(bmpBlock(a, "not-an-address", 0))
	if err := h.d.Reload(ctx); err == nil {
		t.Fatal("a reload with a bad router address was accepted")
	}
	if !strings.Contains(h.logs.String(), `invalid address \"not-an-address\"`) {
		t.Errorf("the bad router address was not logged:\n%s", h.logs.String())
	}
	if r := router("the router still up", full); r.Connections != st.Connections {
		t.Errorf("the router's session changed with a rejected reload: %+v, was %+v", r, st)
	}

	// A new address: the router's session goes on.
	b := listen()
	setBMP(bmpBlock(b, "127.0.0.1", 0))
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.d.receiver().Addr().String(); got != b {
		t.Fatalf("listening on %s, want %s", got, b)
	}
	if err := notListening(a); err != nil {
		t.Errorf("the old address: %v", err)
	}
	if r := router("the router still up", full); r.Connections != st.Connections || !r.Since.Equal(st.Since) {
		t.Errorf("the router's session changed with the listener: %+v, was %+v", r, st)
	}
	if got, err := h.client.BMP(ctx); err != nil || got.Listen != b {
		t.Errorf("GET /api/v1/bmp listen %+v (%v), want %s", got, err, b)
	}

	// An allow-list without the router drops it.
	setBMP(bmpBlock(b, "127.0.0.9", 0))
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	router("the router dropped from the allow-list", func(r api.BMPRouter) bool {
		return r.State == bmp.StateDropped && r.Routes == 0 && strings.Contains(r.LastError, "no longer in the allow-list")
	})
	if !strings.Contains(h.logs.String(), "dropped the router: no longer in the allow-list of routers (bmp.routers)") {
		t.Error("no log line for the router dropped from the allow-list")
	}

	// Back at a with the router allowed (it reconnects there), then a
	// route limit below what it holds drops it.
	setBMP(bmpBlock(a, "127.0.0.1", 0))
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	router("the router back with its routes", full)
	setBMP(bmpBlock(a, "127.0.0.1", 1))
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	router("the router dropped over the new limit", func(r api.BMPRouter) bool {
		return strings.Contains(r.LastError, "more than the new limit of 1")
	})

	// No bmp: block: the receiver stops.
	setBMP("")
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.d.receiver(); r != nil {
		t.Fatal("the receiver still runs without a bmp: block")
	}
	if err := notListening(a); err != nil {
		t.Errorf("without a bmp: block: %v", err)
	}
	if got, err := h.client.BMP(ctx); err != nil || got.Listen != "" || len(got.Routers) != 0 {
		t.Errorf("GET /api/v1/bmp without a bmp: block: %+v (%v)", got, err)
	}
	// And a bmp: block again starts it: the router reports anew.
	setBMP(bmpBlock(a, "127.0.0.1", 0))
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r := router("the router up at the started receiver", full); r.Connections != 1 {
		t.Errorf("a new receiver's router: %+v", r)
	}
}

// notListening checks that this process no longer listens on addr: a
// connection to it is refused, or, if something accepts it, the listening
// socket is another process's (a wildcard listener of a daemon in a test
// running in parallel can take the port once it is free).
func notListening(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	// ss lists the listening sockets on the port with their processes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ss", "-Hltnp", fmt.Sprintf("sport = :%d", ap.Port())).Output()
	if err != nil {
		return fmt.Errorf("%s accepts connections, and ss failed: %w", addr, err)
	}
	mine := fmt.Sprintf("pid=%d,", os.Getpid())
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.Contains(l, mine) {
			continue
		}
		if la, err := netip.ParseAddrPort(f[3]); err != nil || la.Addr().Unmap() == ap.Addr() || la.Addr().IsUnspecified() {
			return fmt.Errorf("%s still accepts connections: this process listens there (%s)", addr, l)
		}
	}
	return nil
}

// The check above can fail: a listener of this process is found, and a
// closed one is not.
func TestNotListening(t *testing.T) {
	a := lab.Loopback(t)
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := notListening(addr); err == nil || !strings.Contains(err.Error(), "this process listens") {
		t.Errorf("an open listener: %v", err)
	}
	ln.Close()
	if err := notListening(addr); err != nil {
		t.Errorf("a closed listener: %v", err)
	}
}
