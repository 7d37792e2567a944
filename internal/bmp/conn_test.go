package bmp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// connReceiver is a listening receiver on 127.0.0.1 with its log, stopped
// at the end of the test.
type connReceiver struct {
	*Receiver
	mu   sync.Mutex
	logs bytes.Buffer
	ups  []Update
}

func (c *connReceiver) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.Write(p)
}

func (c *connReceiver) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

func (c *connReceiver) updates() []Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Update(nil), c.ups...)
}

func startConnReceiver(t *testing.T, cfg Config) *connReceiver {
	t.Helper()
	c := &connReceiver{}
	l := logrus.New()
	l.SetOutput(c)
	cfg.Logger = logrus.NewEntry(l)
	cfg.Listen = "127.0.0.1:0"
	r, err := New(cfg, func(us []Update) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.ups = append(c.ups, us...)
	})
	if err != nil {
		t.Fatal(err)
	}
	r.bodyTimeout = 300 * time.Millisecond
	c.Receiver = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("receiver log:\n%s", c.log())
		}
	})
	return c
}

// dial connects to the receiver from a given loopback address (the
// router's identity).
func dial(t *testing.T, r *Receiver, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, msgs ...[]byte) {
	t.Helper()
	if _, err := c.Write(cat(msgs...)); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds (10 s).
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(r *Receiver, addr string) (RouterStatus, error) {
	a := netip.MustParseAddr(addr)
	for _, s := range r.Status() {
		if s.Addr == a {
			return s, nil
		}
	}
	return RouterStatus{}, fmt.Errorf("no status for %s in %+v", addr, r.Status())
}

func waitState(t *testing.T, r *Receiver, addr, state string, routes int, lastError string) RouterStatus {
	t.Helper()
	var st RouterStatus
	eventually(t, addr+" "+state, func() error {
		var err error
		if st, err = statusOf(r, addr); err != nil {
			return err
		}
		if st.State != state || st.Routes != routes || !strings.Contains(st.LastError, lastError) {
			return fmt.Errorf("%+v, want %s with %d routes, error %q", st, state, routes, lastError)
		}
		return nil
	})
	return st
}

// goodRouter connects from addr and announces pfx for the target.
func goodRouter(t *testing.T, r *Receiver, addr string, p netip.Prefix) net.Conn {
	t.Helper()
	c := dial(t, r, addr)
	send(t, c, initiation(t, addr), peerUp(t, peerA, 64500, false), route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, p))
	waitState(t, r, addr, StateUp, 1, "")
	return c
}

// TestBadRoutersDoNotStopOthers: routers sending garbage, a 4 GB length, a
// message cut short (closed, or stalled), or more routes than allowed are
// each dropped with a log line and a status; a good router keeps its
// routes and its session all along.
func TestBadRoutersDoNotStopOthers(t *testing.T) {
	r := startConnReceiver(t, Config{MaxRoutesPerRouter: 100})
	good := goodRouter(t, r.Receiver, "127.0.0.2", pfx1)

	flood := [][]byte{peerUp(t, peerA, 64500, false)}
	for _, p := range prefixes(150) {
		flood = append(flood, route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, p))
	}
	for _, tc := range []struct {
		addr, log, status string
		msgs              [][]byte
		keepOpen          bool
	}{
		{"127.0.0.3", "only version 3 (RFC 7854) is read", "BMP version 71", [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n")}, true},
		{"127.0.0.4", "says it is 4294967295 bytes long", "4294967295", [][]byte{{3, 0xff, 0xff, 0xff, 0xff, 0}}, true},
		{"127.0.0.5", "cut short: 9 of its", "connection ended", [][]byte{initiation(t, "x")[:9]}, false},
		{"127.0.0.6", "then nothing for 300ms", "then nothing", [][]byte{initiation(t, "x")[:9]}, true},
		{"127.0.0.7", "more than the limit of 100 (bmp.max_routes_per_router)", "more than the limit", flood, true},
	} {
		c := dial(t, r.Receiver, tc.addr)
		send(t, c, tc.msgs...)
		if !tc.keepOpen {
			c.Close()
		}
		st := waitState(t, r.Receiver, tc.addr, StateDropped, 0, tc.status)
		if st.Errors == 0 || !strings.HasPrefix(st.LastError, "dropped: ") {
			t.Errorf("%s: %+v", tc.addr, st)
		}
		eventually(t, "the log line of "+tc.addr, func() error {
			if l := r.log(); !strings.Contains(l, "router="+tc.addr) || !strings.Contains(l, tc.log) {
				return fmt.Errorf("no line with %q for %s", tc.log, tc.addr)
			}
			return nil
		})
		// The receiver closed the connection.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Errorf("%s: connection still open (%d, %v)", tc.addr, n, err)
		}
	}
	// The good router was never disturbed and still gets its routes through.
	send(t, good, route(t, peerA, 64500, 0, []uint32{64500, 13335}, 0, pfx6))
	st := waitState(t, r.Receiver, "127.0.0.2", StateUp, 2, "")
	if st.Connections != 1 || st.Errors != 0 {
		t.Errorf("good router %+v", st)
	}
	if s := r.Lookup(pfx1); len(s) != 1 || s[0].Origin != 396986 {
		t.Errorf("Lookup(%s) = %+v", pfx1, s)
	}
	// The flooding router's 101 routes came and went (the withdrawals are
	// handed over after its status changed).
	eventually(t, "the flooding router's updates", func() error {
		adds, wds := 0, 0
		for _, u := range r.updates() {
			if u.Router == netip.MustParseAddr("127.0.0.7") {
				if u.Withdraw {
					wds++
				} else {
					adds++
				}
			}
		}
		if adds != 101 || wds != 101 {
			return fmt.Errorf("%d announcements, %d withdrawals, want 101 each", adds, wds)
		}
		return nil
	})
}

// TestAllowList: a router not in the list is refused and logged; listed
// ones are served.
func TestAllowList(t *testing.T) {
	r := startConnReceiver(t, Config{Routers: []netip.Addr{netip.MustParseAddr("127.0.0.2")}})
	goodRouter(t, r.Receiver, "127.0.0.2", pfx1)
	c := dial(t, r.Receiver, "127.0.0.9")
	send(t, c, initiation(t, "intruder"), peerUp(t, peerA, 64500, false), route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx6))
	st := waitState(t, r.Receiver, "127.0.0.9", StateRefused, 0, "not in the allow-list")
	if st.Name != "" || st.Messages != 0 || st.Errors != 1 {
		t.Errorf("refused router %+v", st)
	}
	if !strings.Contains(r.log(), "refused a connection: the address is not in the allow-list of routers (bmp.routers)") {
		t.Errorf("no log line for the refusal")
	}
	if s := r.Lookup(pfx6); len(s) != 0 {
		t.Errorf("routes of a refused router: %+v", s)
	}
	waitState(t, r.Receiver, "127.0.0.2", StateUp, 1, "")
}

// TestFlappingRouter: a router that connects and disconnects over and
// over, and one that connects again while its old connection is up.
func TestFlappingRouter(t *testing.T) {
	r := startConnReceiver(t, Config{})
	other := goodRouter(t, r.Receiver, "127.0.0.2", pfx1)
	for i := 1; i <= 5; i++ {
		c := goodRouter(t, r.Receiver, "127.0.0.3", pfx6)
		c.Close()
		st := waitState(t, r.Receiver, "127.0.0.3", StateDown, 0, "")
		if st.Connections != i {
			t.Errorf("flap %d: %+v", i, st)
		}
	}
	eventually(t, "the flapping router's updates", func() error {
		adds, wds := 0, 0
		for _, u := range r.updates() {
			if u.Router == netip.MustParseAddr("127.0.0.3") && u.Prefix == pfx6 {
				if u.Withdraw {
					wds++
				} else {
					adds++
				}
			}
		}
		if adds != 5 || wds != 5 {
			return fmt.Errorf("%d announcements and %d withdrawals, want 5 each", adds, wds)
		}
		return nil
	})
	// A second connection of the router (its Initiation has the same
	// sysName) replaces the first.
	first := goodRouter(t, r.Receiver, "127.0.0.3", pfx6)
	second := dial(t, r.Receiver, "127.0.0.3")
	send(t, second, initiation(t, "127.0.0.3"))
	_ = first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil || err == io.ErrNoProgress {
		t.Errorf("the first connection was not closed: %v", err)
	}
	send(t, second, peerUp(t, peerA, 64500, false), route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx6))
	waitState(t, r.Receiver, "127.0.0.3", StateUp, 1, "")
	// The old connection's state can show until the new one is counted.
	eventually(t, "the second connection counted", func() error {
		st, err := statusOf(r.Receiver, "127.0.0.3")
		if err == nil && (st.Connections != 7 || st.Name != "127.0.0.3") {
			err = fmt.Errorf("after reconnecting: %+v", st)
		}
		return err
	})
	var st RouterStatus
	if !strings.Contains(r.log(), "router connected again; closing its previous connection") {
		t.Error("no log line for the replaced connection")
	}
	// A connection from the same address with another sysName is a second
	// router (behind one NAT address): refused, the first goes on.
	nat := dial(t, r.Receiver, "127.0.0.3")
	send(t, nat, initiation(t, "behind-the-same-nat"))
	_ = nat.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nat.Read(make([]byte, 1)); err == nil || err == io.ErrNoProgress {
		t.Errorf("the second router's connection was not closed: %v", err)
	}
	st = waitState(t, r.Receiver, "127.0.0.3", StateUp, 1, "behind-the-same-nat")
	if st.Connections != 7 || st.Name != "127.0.0.3" || !strings.Contains(st.LastError, "told apart by their address") {
		t.Errorf("after a second router's connection: %+v", st)
	}
	// The line may be written just after the state changed: poll for it.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(r.log(), `refused a connection from 127.0.0.3:`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("no log line for the second router's connection")
			break
		}
	}
	send(t, second, route(t, peerA, 64500, 0, []uint32{64500, 13335}, 0, pfx1))
	waitState(t, r.Receiver, "127.0.0.3", StateUp, 2, "")
	// The steady router saw none of it.
	send(t, other, route(t, peerA, 64500, 0, []uint32{64500, 13335}, 0, pfx6))
	if st := waitState(t, r.Receiver, "127.0.0.2", StateUp, 2, ""); st.Connections != 1 {
		t.Errorf("steady router %+v", st)
	}
}
