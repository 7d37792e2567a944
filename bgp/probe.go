package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// probeTimeout bounds one probe: connect, OPEN, answer.
const probeTimeout = 10 * time.Second

// probeInterval is the least time between two probes of a neighbor;
// probeWindow bounds one (its retries), during which GoBGP does not try
// that neighbor.
const (
	probeInterval = 5 * time.Minute
	probeWindow   = 2 * time.Minute
)

// probeState is what explainLoop knows of a neighbor.
type probeState struct {
	last time.Time
	// explained counts the NOTIFICATIONs GoBGP counted from the neighbor
	// that were logged or probed (GoBGP counts them all).
	explained uint64
}

// explainLoop explains the failed session attempts event reports, one at
// a time, until ctx ends.
func (s *Speaker) explainLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case addr := <-s.why:
			s.explain(ctx, addr)
		}
	}
}

// explain finds out why a neighbor refused the session, if it sent a
// NOTIFICATION GoBGP counted but did not log (one received before the
// session was established): it probes the neighbor (at most once per
// probeInterval) and records the answer as the neighbor's last
// notification. Neighbors with a TCP MD5 password are not probed.
func (s *Speaker) explain(ctx context.Context, addr string) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	var n NeighborConfig
	found := false
	for _, c := range s.cfg.Neighbors {
		if c.Address == addr {
			n, found = c, true
		}
	}
	asn, routerID, srv := s.cfg.ASN, s.cfg.RouterID, s.server
	s.mu.Unlock()
	if !found || n.Password != "" {
		return
	}
	var count uint64
	var caps []bgp.ParameterCapabilityInterface
	var hold uint16
	var cerr error
	idle := false
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
		if p.State != nil && p.State.Messages != nil && p.State.Messages.Received != nil {
			count = p.State.Messages.Received.Notification
		}
		if p.State != nil {
			caps, cerr = apiutil.UnmarshalCapabilities(p.State.LocalCap)
			idle = p.State.SessionState == api.PeerState_IDLE && p.State.AdminState == api.PeerState_UP
		}
		if p.Timers != nil && p.Timers.Config != nil {
			hold = uint16(p.Timers.Config.HoldTime)
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		s.log.WithError(err).WithField("peer", addr).Debug("bgp: reading a neighbor to explain a refusal")
		return
	}
	st := s.probes[addr]
	if st == nil {
		st = &probeState{}
		s.probes[addr] = st
	}
	logged := s.glog.receivedLogged(addr)
	if count <= logged+st.explained || time.Since(st.last) < probeInterval || !idle {
		return
	}
	st.last, st.explained = time.Now(), count-logged
	as16 := asn
	if as16 > 65535 {
		as16 = bgp.AS_TRANS
	}
	open := bgp.NewBGPOpenMessage(uint16(as16), hold, routerID, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	var ttl uint8 // as GoBGP: 1 on a direct eBGP session
	if n.ASN != asn {
		ttl = 1
		if n.Multihop {
			ttl = cmp.Or(n.TTL, 255)
		}
	}
	// GoBGP's attempts are paused while probing: the neighbor turns
	// connections away for a while after refusing one (e.g. BIRD's error
	// wait), and would take GoBGP's next attempt instead of the probe. It
	// is paused only while idle after the refusal: no session can come up
	// before the pause, so pausing never closes one.
	if err := srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr}); err != nil {
		s.log.WithError(err).WithField("peer", addr).Warn("bgp: pausing a neighbor to ask why it refuses the session")
		return
	}
	defer func() {
		if ctx.Err() != nil {
			return // stopping
		}
		if err := srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr}); err != nil {
			s.log.WithError(err).WithField("peer", addr).Error("bgp: resuming a neighbor after asking why it refuses the session")
		}
	}()
	var notif *bgp.BGPNotification
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		notif, err = probe(ctx, n, ttl, open)
		if err == nil || errors.Is(err, errProbeAccepted) || time.Since(st.last) > probeWindow {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	if err != nil {
		s.log.WithError(err).WithField("peer", addr).Info("bgp: the peer closed the session while it opened; asking it why failed")
		return
	}
	s.glog.record(addr, newNotification(NotificationReceived, notif.ErrorCode, notif.ErrorSubcode, notif.Data, time.Now()), true)
}

// errProbeAccepted: the neighbor accepted the probe's OPEN.
var errProbeAccepted = errors.New("the neighbor accepted the OPEN")

// probe asks a neighbor why it refuses the session: it connects as the
// speaker does (same source address, port and TTL), sends open (the OPEN
// GoBGP sends) and reads the answer up to the NOTIFICATION, which it
// returns. GoBGP drops a NOTIFICATION that arrives before the session is
// established, code and all, so this is the only way to learn why a peer
// refuses our OPEN. If the neighbor accepts the OPEN instead, the
// connection is closed before the session is established (no KEEPALIVE,
// no NOTIFICATION) and errProbeAccepted is returned.
func probe(ctx context.Context, n NeighborConfig, ttl uint8, open *bgp.BGPMessage) (*bgp.BGPNotification, error) {
	raw, err := open.Serialize()
	if err != nil {
		return nil, err
	}
	port := n.Port
	if port == 0 {
		port = 179
	}
	d := net.Dialer{Timeout: probeTimeout}
	if n.LocalAddress != "" {
		a, err := netip.ParseAddr(n.LocalAddress)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	if ttl > 0 {
		d.Control = func(network, _ string, c syscall.RawConn) error { return setTTL(network, c, ttl) }
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(n.Address, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := conn.Write(raw); err != nil {
		return nil, err
	}
	// The neighbor's OPEN may come first; then its KEEPALIVE (accepted)
	// or a NOTIFICATION.
	for range 3 {
		m, err := readMessage(conn)
		if err != nil {
			return nil, err
		}
		switch b := m.Body.(type) {
		case *bgp.BGPNotification:
			return b, nil
		case *bgp.BGPKeepAlive:
			return nil, errProbeAccepted
		}
	}
	return nil, errors.New("no NOTIFICATION and no KEEPALIVE after the OPEN")
}

// readMessage reads one BGP message.
func readMessage(r io.Reader) (*bgp.BGPMessage, error) {
	head := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	var h bgp.BGPHeader
	if err := h.DecodeFromBytes(head); err != nil {
		return nil, err
	}
	if h.Len < bgp.BGP_HEADER_LENGTH || h.Len > bgp.BGP_MAX_MESSAGE_LENGTH {
		return nil, fmt.Errorf("bad message length %d", h.Len)
	}
	body := make([]byte, int(h.Len)-bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return bgp.ParseBGPBody(&h, body)
}

// setTTL sets the IP TTL (hop limit) of a socket before it connects, as
// GoBGP does for eBGP sessions.
func setTTL(network string, c syscall.RawConn, ttl uint8) error {
	level, name := syscall.IPPROTO_IP, syscall.IP_TTL
	if network == "tcp6" {
		level, name = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = os.NewSyscallError("setsockopt", syscall.SetsockoptInt(int(fd), level, name, int(ttl)))
	}); err != nil {
		return err
	}
	return serr
}
