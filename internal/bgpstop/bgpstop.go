// Package bgpstop stops an embedded GoBGP server without a data race.
//
// GoBGP v3's StopBgp deconfigures every neighbor and then, in the same
// step, zeroes the global configuration while the neighbors' receive
// goroutines may still be handling an UPDATE that reads it
// (pkg/server/fsm.go: IsEBGPPeer(h.fsm.gConf)). The race detector
// reports it whenever a peer is sending at the moment of the stop.
// GoBGP fixed this only in v4 (osrg/gobgp#3179); v3.37.0 is the last v3.
// Stop removes the neighbors first and waits until each established one
// has gone idle (its receive goroutine has ended) before stopping the
// server.
package bgpstop

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Stop deletes every neighbor of s, waits (until ctx ends) for each
// neighbor that was established to report IDLE, then stops s. s is
// stopped even when ctx ends first or a deletion fails; the error says
// what went wrong.
func Stop(ctx context.Context, s *server.BgpServer) error {
	defer s.Stop()
	events := make(chan *api.WatchEventResponse_PeerEvent, 64)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := s.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		// The IDLE event of a deleted neighbor has type UNKNOWN (GoBGP
		// sets no type on it), so only the markers of the initial dump
		// are left out.
		if pe := r.GetPeer(); pe != nil && pe.Type != api.WatchEventResponse_PeerEvent_END_OF_INIT {
			select {
			case events <- pe:
			case <-wctx.Done():
			}
		}
	})
	if err != nil {
		return fmt.Errorf("bgpstop: watch peers: %w", err)
	}
	var addrs []string
	up := map[string]bool{}
	err = s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetConf() == nil {
			return
		}
		a := p.Conf.NeighborAddress
		addrs = append(addrs, a)
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			up[a] = true
		}
	})
	if err != nil {
		return fmt.Errorf("bgpstop: list peers: %w", err)
	}
	for _, a := range addrs {
		if err := s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a}); err != nil {
			return fmt.Errorf("bgpstop: delete peer %s: %w", a, err)
		}
	}
	for len(up) > 0 {
		select {
		case pe := <-events:
			if pe.Peer != nil && pe.Peer.State != nil && pe.Peer.Conf != nil {
				switch pe.Peer.State.SessionState {
				case api.PeerState_ESTABLISHED:
					// Came up between the listing and its deletion:
					// its IDLE event follows.
					up[pe.Peer.Conf.NeighborAddress] = true
				case api.PeerState_IDLE:
					delete(up, pe.Peer.Conf.NeighborAddress)
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("bgpstop: %d neighbor(s) did not go idle: %w", len(up), ctx.Err())
		}
	}
	return nil
}
