package bgp

import (
	"context"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/asfence/asfence/policy"
)

// Resume is Start after asfence itself restarted (a crash, an upgrade, a
// reboot): in is the set the previous process announced, from the state
// store. Peers with graceful restart kept those routes as stale when the
// old sessions ended; the new OPEN tells them so (RFC 4724: the Restart
// State bit, and the Forwarding State bit for every family), so they keep
// them until our End-of-RIB instead of dropping them at once. Each
// neighbor then gets the whole set, loaded before any session opens, and
// End-of-RIB: a route still in the set is never withdrawn and re-added.
// Without graceful restart in the config, Resume is Start.
//
// GoBGP sets the flags in a neighbor's OPEN while that neighbor is in
// restart mode, and ends restart mode for every neighbor at once when the
// first session that came up has synced (at its End-of-RIB, or as it
// comes up if it restarts nothing itself, like FRR's default helper). A
// neighbor connecting at about that moment would open without the flags
// and drop every stale route of ours. So the neighbors come back one at a
// time (see resync): the others wait, administratively down, and each is
// added again in restart mode when its turn comes.
func (s *Speaker) Resume(ctx context.Context, in *policy.Intent) error {
	return s.start(ctx, in, true)
}

// turnTimeout is how long a resuming neighbor has to come up before the
// next one gets its turn (it keeps trying; it may be down).
func turnTimeout(n NeighborConfig) time.Duration {
	retry := time.Duration(n.ConnectRetry) * time.Second
	if retry == 0 {
		retry = DefaultConnectRetry * time.Second
	}
	// GoBGP's first attempt comes 1-2 s after the neighbor is added,
	// the next ones every 1-2 connect_retry.
	return 2*retry + 5*time.Second
}

// wake runs resync soon (events, timers).
func (s *Speaker) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// resyncLoop runs resync whenever something wakes it, until ctx ends.
func (s *Speaker) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.resync(ctx)
		}
	}
}

// resync brings the resuming neighbors back one at a time. A neighbor is
// done once its session is up: its OPEN was sent in restart mode, since
// only an established neighbor in restart mode can end that mode, and no
// other one was. When the session of the turn has synced (GoBGP left
// restart mode), the next neighbor is added again in restart mode and
// takes its turn. A turn that times out (the neighbor may be down) goes
// back to waiting, unless it is the last one.
func (s *Speaker) resync(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || len(s.resuming) == 0 {
		return
	}
	type peerState struct {
		state      api.PeerState_SessionState
		restarting bool
	}
	states := map[string]peerState{}
	err := s.server.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		states[p.Conf.NeighborAddress] = peerState{p.State.SessionState, p.GracefulRestart != nil && p.GracefulRestart.LocalRestarting}
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).Warn("bgp: list peers")
		}
		return
	}
	for addr := range s.resuming {
		if ps, ok := states[addr]; !ok || ps.state == api.PeerState_ESTABLISHED {
			delete(s.resuming, addr)
		}
	}
	if len(s.resuming) == 0 {
		s.turn = ""
		return
	}
	for _, ps := range states {
		if ps.state == api.PeerState_ESTABLISHED && ps.restarting {
			// Not synced yet: at its End-of-RIB, or when its deferral
			// timer (which sends no event) expires.
			time.AfterFunc(restartDeferral*time.Second+500*time.Millisecond, s.wake)
			return
		}
	}
	idx := map[string]int{}
	for i, n := range s.cfg.Neighbors {
		idx[n.Address] = i
	}
	if i, ok := idx[s.turn]; ok && s.resuming[s.turn] {
		n, ps := s.cfg.Neighbors[i], states[s.turn]
		if ps.state == api.PeerState_OPENSENT || ps.state == api.PeerState_OPENCONFIRM {
			return // coming up
		}
		if len(s.resuming) == 1 || time.Since(s.turnSince) < turnTimeout(n) {
			if !ps.restarting { // not connected, and out of restart mode
				s.readd(ctx, n)
			}
			if len(s.resuming) == 1 {
				s.turnSince = time.Now() // the last one: it keeps its turn
			}
			return
		}
		// Timed out: it waits again (down, so not connected: safe).
		s.turn = ""
		s.readd(ctx, n)
		s.turn = n.Address
	}
	// The next resuming neighbor, in config order after the turn.
	start := idx[s.turn]
	if _, ok := idx[s.turn]; !ok {
		start = -1
	}
	for k := 1; k <= len(s.cfg.Neighbors); k++ {
		n := s.cfg.Neighbors[(start+k)%len(s.cfg.Neighbors)]
		if s.resuming[n.Address] && n.Address != s.turn {
			s.turn, s.turnSince = n.Address, time.Now()
			s.readd(ctx, n)
			time.AfterFunc(turnTimeout(n), s.wake)
			s.log.WithField("peer", n.Address).Info("bgp: neighbor's turn to resume: added again in restart mode")
			return
		}
	}
}

// readd deletes a neighbor that has no session and adds it again: in
// restart mode if it is resuming, and down unless it is the turn.
func (s *Speaker) readd(ctx context.Context, n NeighborConfig) {
	if err := s.server.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address}); err != nil {
		s.log.WithError(err).WithField("peer", n.Address).Warn("bgp: adding a neighbor again in restart mode")
		return
	}
	delete(s.live, n.Address)
	if err := s.addPeer(ctx, n); err != nil {
		s.log.WithError(err).WithField("peer", n.Address).Error("bgp: adding a neighbor again in restart mode")
	}
}
