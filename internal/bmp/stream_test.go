package bmp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gbmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/sirupsen/logrus"
)

var (
	rtrAddr = netip.MustParseAddr("192.0.2.10")
	peerA   = netip.MustParseAddr("192.0.2.20")
	peerB   = netip.MustParseAddr("2001:db8::20")
	pfx1    = netip.MustParsePrefix("203.0.113.0/24")
	pfx6    = netip.MustParsePrefix("2001:db8:1::/48")
)

// streamReceiver is a receiver without a listener: tests feed a session
// byte streams.
func streamReceiver(max int) (*Receiver, *[]Update) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	var got []Update
	r := &Receiver{log: logrus.NewEntry(l), routers: map[netip.Addr]*router{},
		onUpdate: func(us []Update) { got = append(got, us...) }}
	r.max.Store(int64(max))
	return r, &got
}

// feed runs a session over data and returns how it ended (the session is
// not ended: the router keeps its routes).
func feed(r *Receiver, data []byte) (*session, error) {
	rt := r.routerFor(rtrAddr, false)
	s := &session{r: r, rt: rt, log: r.log}
	err := s.read(bufio.NewReader(bytes.NewReader(data)), nil, nil)
	s.flush()
	return s, err
}

func TestStreamViewsOriginsAndWithdrawals(t *testing.T) {
	r, got := streamReceiver(1000)
	_, err := feed(r, cat(
		initiation(t, "r1"),
		peerUp(t, peerA, 64500, false),
		route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx1), // pre-policy
		route(t, peerA, 64500, gbmp.BMP_PEER_FLAG_POST_POLICY, []uint32{64500, 396986}, 0, pfx1), // post-policy: no new event
		route(t, peerA, 64500, 0, []uint32{64500, 13335}, 0, pfx1),                               // a new origin
		route(t, peerA, 64500, 0, nil, 0, pfx1),                                                  // withdrawn pre-policy; post still holds it
		peerUp(t, peerB, 64501, false),
		route(t, peerB, 64501, 0, []uint32{64501, 396986}, 0, pfx6),
	))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	want := []Update{
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 396986, Path: []uint32{64500, 396986}},
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 13335, Path: []uint32{64500, 13335}},
		{Router: rtrAddr, Peer: peerB, PeerAS: 64501, Prefix: pfx6, Origin: 396986, Path: []uint32{64501, 396986}},
	}
	checkUpdates(t, *got, want)
	seen := r.Lookup(pfx1)
	if len(seen) != 1 || seen[0].PrePolicy || !seen[0].PostPolicy || seen[0].Origin != 13335 {
		t.Errorf("Lookup(%s) = %+v", pfx1, seen)
	}
	st := r.Status()
	if len(st) != 1 || st[0].Name != "r1" || st[0].Routes != 2 || st[0].Peers != 2 || st[0].Messages != 8 || st[0].Errors != 0 {
		t.Errorf("status %+v", st)
	}

	// The post-policy withdrawal and a Peer Down remove the rest.
	*got = nil
	_, err = feed(r, cat(route(t, peerA, 64500, gbmp.BMP_PEER_FLAG_POST_POLICY, nil, 0, pfx1), peerDown(t, peerB, 64501)))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	checkUpdates(t, *got, []Update{
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 13335, Withdraw: true},
		{Router: rtrAddr, Peer: peerB, PeerAS: 64501, Prefix: pfx6, Origin: 396986, Withdraw: true},
	})
	if st := r.Status(); st[0].Routes != 0 || st[0].Peers != 1 {
		t.Errorf("status %+v", st)
	}
}

func checkUpdates(t *testing.T, got, want []Update) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d updates %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g := got[i]
		if g.At.IsZero() {
			t.Errorf("update %d has no time", i)
		}
		g.At = want[i].At
		if g.Router != want[i].Router || g.Peer != want[i].Peer || g.PeerAS != want[i].PeerAS || g.Prefix != want[i].Prefix ||
			g.Origin != want[i].Origin || g.Withdraw != want[i].Withdraw || !slices.Equal(g.Path, want[i].Path) {
			t.Errorf("update %d = %+v, want %+v", i, g, want[i])
		}
	}
}

// TestStreamAddPath: two paths of one prefix from an ADD-PATH peer; the
// prefix is withdrawn when its last path is.
func TestStreamAddPath(t *testing.T) {
	r, got := streamReceiver(1000)
	_, err := feed(r, cat(
		peerUp(t, peerA, 64500, true),
		route(t, peerA, 64500, 0, []uint32{64500, 396986}, 1, pfx1),
		route(t, peerA, 64500, 0, []uint32{64500, 64501, 13335}, 2, pfx1),
		route(t, peerA, 64500, 0, nil, 1, pfx1),
	))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	checkUpdates(t, *got, []Update{
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 396986, Path: []uint32{64500, 396986}},
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 13335, Path: []uint32{64500, 64501, 13335}},
	})
	if s := r.Lookup(pfx1); len(s) != 1 || s[0].Origin != 13335 {
		t.Errorf("Lookup = %+v", s)
	}
	if st := r.Status(); st[0].Routes != 1 || st[0].Errors != 0 {
		t.Errorf("status %+v", st)
	}
	*got = nil
	if _, err := feed(r, route(t, peerA, 64500, 0, nil, 2, pfx1)); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	checkUpdates(t, *got, []Update{{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 13335, Withdraw: true}})
}

// TestStreamLegacyASPath: a 2-byte AS_PATH with AS_TRANS (per-peer header
// A flag) takes the origin from AS4_PATH (RFC 6793); a path ending in an
// AS_SET has none.
func TestStreamLegacyASPath(t *testing.T) {
	r, got := streamReceiver(1000)
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAsPathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint16{64500, 3356, 23456})}),
		bgp.NewPathAttributeAs4Path([]*bgp.As4PathParam{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{3356, 396986})}),
		bgp.NewPathAttributeNextHop("192.0.2.1"),
	}
	legacy := gbmp.NewBMPRouteMonitoring(peerHeader(peerA, 64500, gbmp.BMP_PEER_FLAG_TWO_AS),
		bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "203.0.113.0")}))
	setAttrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64500}),
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SET, []uint32{396986, 13335})}),
		bgp.NewPathAttributeNextHop("192.0.2.1"),
	}
	set := gbmp.NewBMPRouteMonitoring(peerHeader(peerA, 64500, 0),
		bgp.NewBGPUpdateMessage(nil, setAttrs, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "198.51.100.0")}))
	if _, err := feed(r, cat(serialize(t, legacy), serialize(t, set))); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	checkUpdates(t, *got, []Update{
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: pfx1, Origin: 396986, Path: []uint32{64500, 3356, 396986}},
		{Router: rtrAddr, Peer: peerA, PeerAS: 64500, Prefix: netip.MustParsePrefix("198.51.100.0/24"), Origin: 0, Path: []uint32{64500, 396986, 13335}},
	})
}

// TestStreamBadInput: what ends a session and what is only counted.
func TestStreamBadInput(t *testing.T) {
	good := cat(peerUp(t, peerA, 64500, false), route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx1))
	badUpdate := route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx1)
	// An unknown AS_PATH segment type: RFC 7606 treats the UPDATE as a
	// withdrawal of its prefixes.
	seg := bytes.Index(badUpdate, []byte{2, 2, 0, 0, 0xfb, 0xf4})
	badUpdate[seg] = 9
	huge := []byte{3, 0xff, 0xff, 0xff, 0xff, 0}
	for _, tc := range []struct {
		name      string
		data      []byte
		dropped   string // the session ends with this error, or io.EOF
		errors    uint64
		routes    int
		lastError string
	}{
		{name: "garbage", data: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), dropped: "BMP version 71"},
		{name: "4 GB length", data: cat(good, huge), dropped: "says it is 4294967295 bytes long", routes: 1},
		{name: "short length", data: cat(good, []byte{3, 0, 0, 0, 2, 0}), dropped: "says it is 2 bytes long", routes: 1},
		{name: "cut message", data: cat(good, initiation(t, "x")[:9]), dropped: "cut short: 9 of its", routes: 1},
		{name: "cut header", data: cat(good, []byte{3, 0, 0}), dropped: "header cut short", routes: 1},
		{name: "undecodable update", data: cat(good, badUpdate, route(t, peerA, 64500, 0, []uint32{64500, 13335}, 0, netip.MustParsePrefix("198.51.100.0/24"))),
			errors: 1, routes: 1, lastError: "Route Monitoring of peer 192.0.2.20"},
		{name: "per-peer header cut", data: cat(good, []byte{3, 0, 0, 0, 10, 0, 0, 0, 0, 0}), errors: 1, routes: 1, lastError: "too short for its per-peer header"},
		{name: "unknown type", data: cat(good, []byte{3, 0, 0, 0, 6, 9}), errors: 1, routes: 1, lastError: "unexpected message type: 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := streamReceiver(1000)
			s, err := feed(r, tc.data)
			if tc.dropped != "" {
				var de dropError
				if !errors.As(err, &de) || !bytes.Contains([]byte(err.Error()), []byte(tc.dropped)) {
					t.Fatalf("read: %v, want a drop saying %q", err, tc.dropped)
				}
			} else if !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v, want EOF", err)
			}
			st := r.Status()[0]
			if st.Errors != tc.errors || st.Routes != tc.routes || !bytes.Contains([]byte(st.LastError), []byte(tc.lastError)) {
				t.Errorf("status %+v, want %d errors (%q) and %d routes", st, tc.errors, tc.lastError, tc.routes)
			}
			s.end(err, false)
			st = r.Status()[0]
			if tc.dropped != "" && (st.State != StateDropped || !bytes.Contains([]byte(st.LastError), []byte(tc.dropped))) {
				t.Errorf("after the drop: %+v", st)
			}
			if st.Routes != 0 {
				t.Errorf("routes after the session: %+v", st)
			}
		})
	}
}

// TestStreamRouteLimit: a router going over its limit is dropped.
func TestStreamRouteLimit(t *testing.T) {
	r, got := streamReceiver(100)
	msgs := [][]byte{peerUp(t, peerA, 64500, false)}
	for _, p := range prefixes(150) {
		msgs = append(msgs, route(t, peerA, 64500, 0, []uint32{64500, 396986}, 0, p))
	}
	s, err := feed(r, cat(msgs...))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("more than the limit of 100")) {
		t.Fatalf("read: %v", err)
	}
	s.end(err, false)
	st := r.Status()[0]
	if st.State != StateDropped || st.Routes != 0 || !bytes.Contains([]byte(st.LastError), []byte("bmp.max_routes_per_router")) {
		t.Errorf("status %+v", st)
	}
	adds, wds := 0, 0
	for _, u := range *got {
		if u.Withdraw {
			wds++
		} else {
			adds++
		}
	}
	if adds != 101 || wds != 101 {
		t.Errorf("%d announcements and %d withdrawals, want 101 each", adds, wds)
	}
}

// FuzzRead: the message reader never panics, and whatever it read, the
// router's route count matches its tables, and ending the session leaves
// nothing behind.
func FuzzRead(f *testing.F) {
	f.Add(cat(initiation(f, "r"), peerUp(f, peerA, 64500, false), route(f, peerA, 64500, 0, []uint32{64500, 396986}, 0, pfx1, netip.MustParsePrefix("10.0.0.0/8"))))
	f.Add(cat(peerUp(f, peerA, 64500, true), route(f, peerA, 64500, 0, []uint32{64500, 396986}, 7, pfx1), route(f, peerA, 64500, 0, nil, 7, pfx1)))
	f.Add(cat(peerUp(f, peerB, 64501, false), route(f, peerB, 64501, gbmp.BMP_PEER_FLAG_POST_POLICY, []uint32{64501}, 0, pfx6), peerDown(f, peerB, 64501)))
	f.Add(serialize(f, gbmp.NewBMPTermination([]gbmp.BMPTermTLVInterface{gbmp.NewBMPTermTLV16(gbmp.BMP_TERM_TLV_TYPE_REASON, 1)})))
	f.Add(serialize(f, gbmp.NewBMPStatisticsReport(peerHeader(peerA, 64500, 0), []gbmp.BMPStatsTLVInterface{gbmp.NewBMPStatsTLV32(0, 5)})))
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _ := streamReceiver(50)
		s, err := feed(r, data)
		if err == nil {
			t.Fatal("read ended without an error")
		}
		rt := s.rt
		n := 0
		for _, p := range rt.peers {
			size := p.routes.Size()
			for _, ps := range p.multi.All() {
				size += len(ps)
			}
			if size != p.count {
				t.Fatalf("peer %v counts %d routes, holds %d", p.key, p.count, size)
			}
			n += p.count
		}
		if n != rt.routes {
			t.Fatalf("router counts %d routes, peers hold %d", rt.routes, n)
		}
		s.end(err, false)
		if st := r.Status()[0]; st.Routes != 0 || st.Peers != 0 {
			t.Fatalf("after the session: %+v", st)
		}
	})
}

// BenchmarkRead: the receiver's own rate on a stream of Route Monitoring
// messages with one IPv4 prefix each (as gobgpd and FRR send them).
func BenchmarkRead(b *testing.B) {
	const n = 100000
	msgs := [][]byte{peerUp(b, peerA, 64500, false)}
	for _, p := range prefixes(n) {
		msgs = append(msgs, route(b, peerA, 64500, 0, []uint32{64500, 3356, 396986}, 0, p))
	}
	data := cat(msgs...)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		r, _ := streamReceiver(2 * n)
		r.onUpdate = func([]Update) {}
		s, err := feed(r, data)
		if !errors.Is(err, io.EOF) || s.rt.routes != n {
			b.Fatalf("%v, %d routes", err, s.rt.routes)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}
