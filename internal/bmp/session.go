package bmp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	bmppkt "github.com/bio-routing/bio-rd/protocols/bmp/packet"
	"github.com/sirupsen/logrus"
)

const (
	// maxMessage bounds a BMP message. The largest legitimate one is a
	// Peer Up with two extended (RFC 8654) OPENs and information TLVs, or
	// a Route Monitoring message with one extended UPDATE: well under
	// 256 KiB. A longer length is garbage; the stream cannot be resynced,
	// so the router is dropped.
	maxMessage = 256 << 10
	// bodyTimeout bounds the wait for the rest of a message once its header
	// has arrived: a router that sends half a message and stalls is
	// dropped instead of holding its slot forever.
	bodyTimeout = 30 * time.Second
	// batchSize is the most Updates handed to onUpdate at once.
	batchSize = 4096
	// perPeerHeaderLen is the per-peer header of RFC 7854 §4.2.
	perPeerHeaderLen = 42
)

// Per-peer header fields (RFC 7854 §4.2, RFC 9069 §4.1).
const (
	peerTypeGlobal = 0
	peerTypeLocRIB = 3
	flagV          = 0x80 // IPv6 peer address (not for Loc-RIB)
	flagL          = 0x40 // post-policy
	flagA          = 0x20 // legacy 2-byte AS_PATH
)

// errTerminated ends a session after the router's Termination message.
var errTerminated = errors.New("router sent a Termination message")

// dropError ends a session by the receiver's decision.
type dropError struct{ err error }

func (e dropError) Error() string { return e.err.Error() }
func (e dropError) Unwrap() error { return e.err }

func drop(format string, args ...any) error { return dropError{fmt.Errorf(format, args...)} }

// handle serves one router connection.
func (r *Receiver) handle(ctx context.Context, c net.Conn) {
	ra, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	addr := ra.Addr().Unmap()
	log := r.log.WithField("router", addr.String())
	now := time.Now()
	if !r.allowed(addr) {
		c.Close()
		log.WithField("remote", c.RemoteAddr().String()).Warn("bmp: refused a connection: the address is not in the allow-list of routers (bmp.routers)")
		if rt := r.routerFor(addr, true); rt != nil {
			rt.mu.Lock()
			if rt.cur == nil {
				// Not connected (never, or no longer: a router dropped
				// when the allow-list changed is refused from then on).
				if rt.state != StateRefused {
					rt.since = now
				}
				rt.state = StateRefused
			}
			rt.setError("connection refused: not in the allow-list of routers", now)
			rt.mu.Unlock()
		}
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	rt := r.routerFor(addr, false)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	br := bufio.NewReaderSize(c, 64<<10)
	s := &session{r: r, rt: rt, log: log, conn: c}
	var first []byte
	rt.mu.RLock()
	busy := rt.cur != nil
	rt.mu.RUnlock()
	if busy {
		// Another connection from this address is up: the router again
		// (it restarted, or its old TCP connection died silently), or a
		// second router behind the same address (NAT). The Initiation, the
		// first message of a session with the sysName of the router (RFC
		// 7854 4.3), tells them apart.
		var err error
		_ = c.SetReadDeadline(time.Now().Add(r.bodyTimeout))
		first, err = s.next(br, nil, nil)
		_ = c.SetReadDeadline(time.Time{})
		if err != nil {
			c.Close()
			log.WithField("remote", c.RemoteAddr().String()).WithError(err).Warn("bmp: a second connection from the router's address ended before its first message")
			return
		}
		name := initiationName(first)
		rt.mu.Lock()
		if cur := rt.name; rt.cur != nil && name != "" && cur != "" && name != cur {
			msg := fmt.Sprintf("refused a connection from %s with sysName %q: router %q reports from this address; routers are told apart by their address (two routers behind one NAT address?)",
				c.RemoteAddr(), name, cur)
			rt.setError(msg, now)
			rt.mu.Unlock()
			c.Close()
			log.Error("bmp: " + msg)
			return
		}
		rt.mu.Unlock()
	}
	done := make(chan struct{})
	defer close(done)
	rt.mu.Lock()
	prev, prevDone := rt.cur, rt.done
	rt.cur, rt.done, rt.kicked = c, done, nil
	rt.mu.Unlock()
	if prev != nil {
		// The router again, while its old connection is believed up: the
		// new connection wins.
		log.Warn("bmp: router connected again; closing its previous connection")
		prev.Close()
		<-prevDone
	}

	rt.mu.Lock()
	rt.state, rt.since = StateUp, time.Now()
	rt.connections++
	rt.mu.Unlock()
	log.WithField("remote", c.RemoteAddr().String()).Info("bmp: router connected")

	err := s.read(br, c.SetReadDeadline, first)
	c.Close()
	s.end(err, ctx.Err() != nil)
}

// initiationName is the sysName of an Initiation message ("" for another
// message, or one without a sysName).
func initiationName(msg []byte) string {
	if len(msg) <= bmppkt.CommonHeaderLen || msg[5] != bmppkt.InitiationMessageType {
		return ""
	}
	var m bmppkt.Msg
	if safely(func() error {
		var err error
		m, err = bmppkt.Decode(msg)
		return err
	}) != nil {
		return ""
	}
	im, ok := m.(*bmppkt.InitiationMessage)
	if !ok {
		return ""
	}
	for _, tlv := range im.TLVs {
		if tlv.InformationType == 2 {
			return infoString(tlv.Information)
		}
	}
	return ""
}

// session is one connection of a router: it owns the router's routes
// while it runs.
type session struct {
	r       *Receiver
	rt      *router
	conn    net.Conn // nil when reading a byte stream in tests
	log     *logrus.Entry
	pending []Update
	upd     update
}

// read processes first (a message already read, or nil), then reads and
// processes messages until the stream ends or is bad. setDeadline (nil in
// tests) bounds the wait for a message's body.
func (s *session) read(br *bufio.Reader, setDeadline func(time.Time) error, first []byte) error {
	if first != nil {
		if err := s.message(first); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 4096)
	for {
		if br.Buffered() == 0 {
			// About to wait for the router: hand over what is pending.
			s.flush()
		}
		msg, err := s.next(br, setDeadline, &buf)
		if err != nil {
			return err
		}
		if err := s.message(msg); err != nil {
			return err
		}
		if len(s.pending) >= batchSize {
			s.flush()
		}
	}
}

// next reads one framed message, into *buf (grown as needed; nil: a new
// buffer). setDeadline (nil in tests) bounds the wait for its body.
func (s *session) next(br *bufio.Reader, setDeadline func(time.Time) error, buf *[]byte) ([]byte, error) {
	var hdr [bmppkt.CommonHeaderLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, drop("message header cut short: the connection ended within a header")
		}
		return nil, err
	}
	version, length := hdr[0], binary.BigEndian.Uint32(hdr[1:5])
	if version != bmppkt.BMPVersion {
		return nil, drop("message with BMP version %d (type %d, length %d): only version 3 (RFC 7854) is read; not a BMP stream?", version, hdr[5], length)
	}
	if length < bmppkt.CommonHeaderLen || length > maxMessage {
		return nil, drop("message of type %d says it is %d bytes long (the limit is %d, the least %d)", hdr[5], length, maxMessage, bmppkt.CommonHeaderLen)
	}
	n := int(length)
	var b []byte
	if buf != nil {
		b = *buf
	}
	if cap(b) < n {
		b = make([]byte, n)
	}
	b = b[:n]
	if buf != nil {
		*buf = b
	}
	copy(b, hdr[:])
	timed := setDeadline != nil && br.Buffered() < n-len(hdr)
	if timed {
		_ = setDeadline(time.Now().Add(s.r.bodyTimeout))
	}
	got, err := io.ReadFull(br, b[len(hdr):])
	if timed {
		_ = setDeadline(time.Time{})
	}
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, drop("message of type %d cut short: %d of its %d bytes came before the connection ended", hdr[5], len(hdr)+got, n)
		case errors.As(err, &ne) && ne.Timeout():
			return nil, drop("message of type %d cut short: %d of its %d bytes came, then nothing for %s", hdr[5], len(hdr)+got, n, s.r.bodyTimeout)
		}
		return nil, err
	}
	return b, nil
}

// flush hands pending Updates to onUpdate.
func (s *session) flush() {
	if len(s.pending) == 0 {
		return
	}
	batch := s.pending
	s.pending = nil
	s.r.emit(batch)
}

// message processes one framed BMP message. Errors it returns end the
// session; a message that does not decode is counted and skipped.
func (s *session) message(msg []byte) error {
	now := time.Now()
	rt := s.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.messages++
	rt.lastMessage = now
	typ := msg[5]
	// bio-rd's decoders subtract the headers from the message length
	// without checking it: guard them.
	switch typ {
	case bmppkt.RouteMonitoringType, bmppkt.StatisticsReportType, bmppkt.PeerDownNotificationType, bmppkt.PeerUpNotificationType, bmppkt.RouteMirroringMessageType:
		if len(msg) < bmppkt.CommonHeaderLen+perPeerHeaderLen+1 {
			s.badMessage(now, "message of type %d is %d bytes long, too short for its per-peer header", typ, len(msg))
			return nil
		}
	}
	if typ == bmppkt.StatisticsReportType {
		// Not used; and bio-rd's decoder allocates the entry count the
		// message claims (up to 2^32 entries) before reading any.
		return nil
	}
	var m bmppkt.Msg
	err := safely(func() error {
		var err error
		m, err = bmppkt.Decode(msg)
		return err
	})
	if err != nil {
		s.badMessage(now, "message of type %d (%d bytes): %v", typ, len(msg), err)
		return nil
	}
	switch m := m.(type) {
	case *bmppkt.RouteMonitoringMsg:
		s.routeMonitoring(m, now)
	case *bmppkt.PeerUpNotification:
		s.peerUp(m, now)
	case *bmppkt.PeerDownNotification:
		s.peerDown(m.PerPeerHeader, now)
	case *bmppkt.InitiationMessage:
		for _, tlv := range m.TLVs {
			switch tlv.InformationType {
			case 1:
				rt.descr = infoString(tlv.Information)
			case 2:
				rt.name = infoString(tlv.Information)
			}
		}
		s.log.WithFields(logrus.Fields{"sysName": rt.name, "sysDescr": rt.descr}).Info("bmp: router initiated the session")
	case *bmppkt.TerminationMessage:
		reason := ""
		for _, tlv := range m.TLVs {
			switch {
			case tlv.InformationType == 0:
				reason += " " + infoString(tlv.Information)
			case tlv.InformationType == 1 && len(tlv.Information) >= 2:
				reason += fmt.Sprintf(" (reason code %d)", binary.BigEndian.Uint16(tlv.Information))
			}
		}
		s.log.Info("bmp: router terminated the session:" + reason)
		return errTerminated
	}
	if max := s.r.max.Load(); int64(rt.routes) > max {
		return drop("holds %d routes, more than the limit of %d (bmp.max_routes_per_router)", rt.routes, max)
	}
	return nil
}

// badMessage counts a message that did not decode; the first ones and
// then every power of ten are logged, so that a router sending garbage
// cannot flood the log.
func (s *session) badMessage(now time.Time, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.rt.setError(msg, now)
	if n := s.rt.errors; n <= 10 || isPowerOf10(n) {
		s.log.WithField("errors", n).Warn("bmp: skipped a message that did not decode: " + msg)
	}
}

func isPowerOf10(n uint64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// peerOf finds or (implicitly, for routes without a Peer Up, as GoBGP sends
// its Loc-RIB) creates the peer of a per-peer header; nil for peers that
// are not read (RD instance peers: VRFs).
func (s *session) peerOf(h *bmppkt.PerPeerHeader, now time.Time, create bool) (*peer, uint8) {
	var key peerKey
	var view uint8
	switch {
	case h.PeerType == peerTypeLocRIB && h.PeerDistinguisher == 0:
		key, view = peerKey{addr: netip.IPv4Unspecified(), loc: true}, viewLoc
	case h.PeerType == peerTypeGlobal:
		if h.PeerFlags&flagV != 0 {
			key.addr = netip.AddrFrom16(h.PeerAddress)
		} else {
			key.addr = netip.AddrFrom4([4]byte(h.PeerAddress[12:]))
		}
		view = viewPre
		if h.PeerFlags&flagL != 0 {
			view = viewPost
		}
	default:
		return nil, 0
	}
	p := s.rt.peers[key]
	if p == nil && create {
		p = &peer{key: key, as: h.PeerAS, up: now, fourByte: true}
		s.rt.peers[key] = p
	}
	return p, view
}

func (s *session) peerUp(m *bmppkt.PeerUpNotification, now time.Time) {
	h := m.PerPeerHeader
	p, _ := s.peerOf(h, now, false)
	if p != nil && p.count > 0 {
		// Up again without a Down: the old session's routes are gone.
		s.removePeer(p, now)
		p = nil
	}
	p, _ = s.peerOf(h, now, true)
	if p == nil {
		return
	}
	p.as, p.up = h.PeerAS, now
	if h.PeerType == peerTypeLocRIB {
		return
	}
	o, four, err := openCaps(m.SentOpenMsg, m.ReceivedOpenMsg)
	if err != nil {
		s.badMessage(now, "Peer Up of %s: %v", p.key.addr, err)
		return
	}
	p.addPath4, p.addPath6, p.fourByte = o.addPath4, o.addPath6, four
	s.log.WithFields(logrus.Fields{"peer": p.key.addr.String(), "peer_as": p.as}).Debug("bmp: peer up")
}

func (s *session) peerDown(h *bmppkt.PerPeerHeader, now time.Time) {
	if p, _ := s.peerOf(h, now, false); p != nil {
		s.removePeer(p, now)
		s.log.WithFields(logrus.Fields{"peer": p.key.addr.String(), "peer_as": p.as}).Debug("bmp: peer down")
	}
}

// removePeer withdraws every route of a peer (caller holds rt.mu).
func (s *session) removePeer(p *peer, now time.Time) {
	delete(s.rt.peers, p.key)
	s.rt.routes -= p.count
	p.all(func(pfx netip.Prefix, origin uint32) {
		s.pending = append(s.pending, Update{Router: s.rt.addr, Peer: p.key.addr, PeerAS: p.as, Prefix: pfx, Origin: origin, Withdraw: true, At: now})
	})
}

func (s *session) routeMonitoring(m *bmppkt.RouteMonitoringMsg, now time.Time) {
	h := m.PerPeerHeader
	p, view := s.peerOf(h, now, true)
	if p == nil {
		return
	}
	o := decodeOptions{addPath4: p.addPath4, addPath6: p.addPath6, twoByteAS: h.PeerFlags&flagA != 0 && h.PeerType != peerTypeLocRIB}
	if view == viewPost || view == viewLoc {
		// Post-policy and Loc-RIB routes carry no ADD-PATH identifiers
		// unless the router says so, which BMP has no way to (RFC 8671
		// and RFC 9069 leave it to the router's ADD-PATH send side).
		o.addPath4, o.addPath6 = false, false
	}
	err := decodeUpdate(m.BGPUpdate, o, &s.upd)
	if err != nil && (p.addPath4 || p.addPath6) {
		// Whether a router encodes post-policy routes of an ADD-PATH peer
		// with path identifiers is its choice: try the other way.
		alt := o
		alt.addPath4, alt.addPath6 = p.addPath4 && !o.addPath4, p.addPath6 && !o.addPath6
		if decodeUpdate(m.BGPUpdate, alt, &s.upd) == nil {
			err = nil
		}
	}
	if err != nil {
		s.badMessage(now, "Route Monitoring of peer %s: %v", p.key.addr, err)
	}
	if len(s.upd.nlris) == 0 {
		return
	}
	stamp := uint32(now.Unix())
	for _, n := range s.upd.nlris {
		pfx := n.prefix
		if n.withdraw {
			c, origin, shrank := p.withdraw(pfx, n.id, view)
			if shrank {
				p.count--
				s.rt.routes--
			}
			if c == removed {
				s.pending = append(s.pending, Update{Router: s.rt.addr, Peer: p.key.addr, PeerAS: p.as, Prefix: pfx, Origin: origin, Withdraw: true, At: now})
			}
			continue
		}
		c, grew := p.announce(pfx, n.id, view, s.upd.origin, stamp)
		if grew {
			p.count++
			s.rt.routes++
		}
		if c == added {
			s.pending = append(s.pending, Update{Router: s.rt.addr, Peer: p.key.addr, PeerAS: p.as, Prefix: pfx, Origin: s.upd.origin, Path: s.upd.path, At: now})
		}
	}
}

// end closes the session: its routes are withdrawn and the status says
// why it ended.
func (s *session) end(err error, shutdown bool) {
	now := time.Now()
	rt := s.rt
	rt.mu.Lock()
	var peers []*peer
	for _, p := range rt.peers {
		peers = append(peers, p)
	}
	rt.peers = map[peerKey]*peer{}
	routes := rt.routes
	rt.routes = 0
	var de dropError
	if rt.kicked != nil && (s.conn == nil || rt.cur == s.conn) {
		err, rt.kicked = dropError{rt.kicked}, nil
	}
	switch {
	case shutdown:
		rt.state = StateDown
		s.log.Info("bmp: receiver stopping; closed the router's connection")
	case errors.As(err, &de):
		rt.state = StateDropped
		rt.setError("dropped: "+de.Error(), now)
		s.log.WithField("routes", routes).Error("bmp: dropped the router: " + de.Error())
	case errors.Is(err, io.EOF), errors.Is(err, errTerminated):
		rt.state = StateDown
		s.log.WithField("routes", routes).Info("bmp: router closed the connection")
	default:
		rt.state = StateDown
		rt.setError("connection: "+err.Error(), now)
		s.log.WithField("routes", routes).WithError(err).Warn("bmp: router connection failed")
	}
	rt.since = now
	if s.conn != nil && rt.cur == s.conn {
		rt.cur = nil
	}
	rt.mu.Unlock()
	s.flush()
	// The routes of the session are gone: withdraw them outside the lock,
	// in batches.
	for _, p := range peers {
		p.all(func(pfx netip.Prefix, origin uint32) {
			s.pending = append(s.pending, Update{Router: rt.addr, Peer: p.key.addr, PeerAS: p.as, Prefix: pfx, Origin: origin, Withdraw: true, At: now})
			if len(s.pending) >= batchSize {
				s.flush()
			}
		})
	}
	s.flush()
}
