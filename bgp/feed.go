package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// A feed neighbor (feed: true) sends asfence its table, typically a route
// reflector's, for the live watch. Nothing it sends enters the speaker's
// RIB: the import policy rejects every path from every peer (policy.go),
// so a feed route is never selected, never re-advertised and never mixed
// with what asfence announces. GoBGP still keeps each route in the
// neighbor's Adj-RIB-In (before import policy), which is where the speaker
// reads them from: its pre-policy update events. A feed neighbor gets
// nothing announced unless its announce: says so, and takes up to
// DefaultFeedMaxPrefixes routes per family unless max_prefixes says
// otherwise.

// DefaultFeedMaxPrefixes is a feed neighbor's max_prefixes per family: a
// full IPv4 table (about 1M routes) with room to grow.
const DefaultFeedMaxPrefixes = 2_000_000

// FeedUpdate is one route a feed neighbor announced or withdrew.
type FeedUpdate struct {
	// Neighbor is the feed neighbor; PeerAS its AS.
	Neighbor netip.Addr
	PeerAS   uint32
	Prefix   netip.Prefix
	// Origin is the last AS of the AS path when the path ends in an
	// AS_SEQUENCE; 0 when it ends in an AS_SET, or is empty (a route of
	// the neighbor's own AS), and for withdrawals.
	Origin uint32
	// Path is the AS path as sent (AS_SET members flattened in order).
	Path     []uint32
	Withdraw bool
	At       time.Time
}

// FeedHandler receives what feed neighbors send, on one goroutine, in
// order. Routes gets each batch of updates; Down says a feed session
// ended, which drops everything that neighbor sent (GoBGP sends no
// withdrawals for it).
type FeedHandler interface {
	Routes([]FeedUpdate)
	Down(neighbor netip.Addr)
}

// feeds is the set of feed neighbors the event goroutine reads (the
// config may change on reload).
type feeds struct {
	mu    sync.RWMutex
	addrs map[string]bool
	// up: feed sessions established, to report their end once.
	up map[string]bool
}

func (f *feeds) set(c *Config) {
	m := map[string]bool{}
	for _, n := range c.Neighbors {
		if n.Feed {
			if a, err := netip.ParseAddr(n.Address); err == nil {
				m[a.Unmap().String()] = true
			}
		}
	}
	f.mu.Lock()
	f.addrs = m
	f.mu.Unlock()
}

func (f *feeds) is(addr string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.addrs[addr]
}

// hasFeed reports whether a config has a feed neighbor.
func hasFeed(c *Config) bool {
	for _, n := range c.Neighbors {
		if n.Feed {
			return true
		}
	}
	return false
}

// watchFeeds subscribes to the pre-policy updates of every neighbor (GoBGP
// filters by one address only) and passes on those of feed neighbors. It
// runs once, at start or at the reload that adds the first feed neighbor;
// without a feed neighbor GoBGP does not copy updates for anyone.
func (s *Speaker) watchFeeds(ctx context.Context) error {
	if s.opts.Feed == nil || s.feedWatching || !hasFeed(&s.cfg) {
		return nil
	}
	req := &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_ADJIN}}},
	}
	if err := s.server.WatchEvent(s.watchCtx, req, s.feedEvent); err != nil {
		return fmt.Errorf("bgp: watch feed neighbors: %w", err)
	}
	s.feedWatching = true
	return nil
}

// feedEvent runs on GoBGP's watcher goroutine.
func (s *Speaker) feedEvent(r *api.WatchEventResponse) {
	if pe := r.GetPeer(); pe != nil {
		if pe.Type != api.WatchEventResponse_PeerEvent_STATE || pe.Peer == nil || pe.Peer.State == nil {
			return
		}
		addr := pe.Peer.State.NeighborAddress
		if !s.feeds.is(addr) {
			return
		}
		est := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
		if est {
			s.feeds.up[addr] = true
			return
		}
		if s.feeds.up[addr] {
			delete(s.feeds.up, addr)
			if a, err := netip.ParseAddr(addr); err == nil {
				s.opts.Feed.Down(a)
			}
		}
		return
	}
	t := r.GetTable()
	if t == nil || len(t.Paths) == 0 {
		return
	}
	var out []FeedUpdate
	for _, p := range t.Paths {
		if !s.feeds.is(p.NeighborIp) {
			continue
		}
		u, err := feedUpdate(p)
		if err != nil {
			s.log.WithError(err).WithField("peer", p.NeighborIp).Warn("bgp: feed route skipped")
			continue
		}
		out = append(out, u)
	}
	if len(out) > 0 {
		s.opts.Feed.Routes(out)
	}
}

// feedUpdate converts one of GoBGP's paths.
func feedUpdate(p *api.Path) (FeedUpdate, error) {
	var u FeedUpdate
	a, err := netip.ParseAddr(p.NeighborIp)
	if err != nil {
		return u, fmt.Errorf("neighbor %q: %w", p.NeighborIp, err)
	}
	u.Neighbor, u.PeerAS, u.Withdraw = a.Unmap(), p.SourceAsn, p.IsWithdraw
	if p.Age != nil {
		u.At = p.Age.AsTime()
	} else {
		u.At = time.Now()
	}
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return u, err
	}
	switch n := nlri.(type) {
	case *bgp.IPAddrPrefix:
		u.Prefix, err = netip.ParsePrefix(n.String())
	case *bgp.IPv6AddrPrefix:
		u.Prefix, err = netip.ParsePrefix(n.String())
	default:
		return u, fmt.Errorf("not a unicast route: %s", nlri)
	}
	if err != nil {
		return u, err
	}
	u.Prefix = u.Prefix.Masked()
	if u.Withdraw {
		return u, nil
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return u, fmt.Errorf("%s: %w", u.Prefix, err)
	}
	for _, at := range attrs {
		ap, ok := at.(*bgp.PathAttributeAsPath)
		if !ok {
			continue
		}
		ends := false
		for _, seg := range ap.Value {
			as := seg.GetAS()
			if len(as) == 0 {
				continue
			}
			u.Path = append(u.Path, as...)
			ends = seg.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_SEQ
		}
		if ends {
			u.Origin = u.Path[len(u.Path)-1]
		}
	}
	return u, nil
}
