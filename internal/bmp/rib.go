package bmp

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gaissmai/bart"
)

// Views of a route (bits of entry.views).
const (
	viewPre  uint8 = 1 << iota // Adj-RIB-In pre-policy
	viewPost                   // Adj-RIB-In post-policy
	viewLoc                    // Loc-RIB (RFC 9069)
)

// entry is all that is kept of one route: 12 bytes, no pointers.
type entry struct {
	origin uint32
	first  uint32 // unix seconds of the first announcement
	views  uint8
}

// pathEntry is one ADD-PATH path of a prefix.
type pathEntry struct {
	id uint32
	entry
}

// peerKey identifies a monitored peer of a router: the Loc-RIB is a peer
// of its own (address 0.0.0.0, loc set).
type peerKey struct {
	addr netip.Addr
	loc  bool
}

// peer is one monitored peer's routes.
type peer struct {
	key peerKey
	as  uint32
	up  time.Time
	// addPath4/6: the peer sends ADD-PATH path identifiers (from the OPEN
	// messages of its Peer Up); those families' routes go in multi.
	addPath4, addPath6 bool
	fourByte           bool // 4-byte AS numbers negotiated (from the OPENs)
	routes             bart.Table[entry]
	multi              bart.Table[[]pathEntry]
	count              int
}

func (p *peer) addPath(pfx netip.Prefix) bool {
	if pfx.Addr().Is4() {
		return p.addPath4
	}
	return p.addPath6
}

// router is the state of one router (BMP speaker). mu guards all of it;
// only the router's current session writes the routes.
type router struct {
	addr netip.Addr

	mu          sync.RWMutex
	name, descr string
	state       string
	since       time.Time
	connections int
	messages    uint64
	lastMessage time.Time
	errors      uint64
	lastError   string
	lastErrorAt time.Time
	peers       map[peerKey]*peer
	routes      int

	// The current session: closing cur ends it; done is closed when it has
	// cleaned up. kicked, when set, is why the receiver closed it.
	cur    interface{ Close() error }
	done   chan struct{}
	kicked error
}

func newRouter(addr netip.Addr) *router {
	return &router{addr: addr, peers: map[peerKey]*peer{}}
}

// kick drops the router's current session, if any, for reason: the
// session ends as if its messages had made the receiver drop it.
func (rt *router) kick(reason error) {
	rt.mu.Lock()
	c := rt.cur
	if c != nil {
		rt.kicked = reason
	}
	rt.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (rt *router) isRefused() bool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return rt.state == StateRefused
}

func (rt *router) status() RouterStatus {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	return RouterStatus{
		Addr: rt.addr, Name: rt.name, Description: rt.descr,
		State: rt.state, Since: rt.since, Connections: rt.connections,
		Peers: len(rt.peers), Routes: rt.routes,
		Messages: rt.messages, LastMessage: rt.lastMessage,
		Errors: rt.errors, LastError: rt.lastError, LastErrorAt: rt.lastErrorAt,
	}
}

// setError records an error (caller holds mu).
func (rt *router) setError(msg string, at time.Time) {
	rt.errors++
	rt.lastError, rt.lastErrorAt = msg, at
}

func (rt *router) lookup(p netip.Prefix, out []Seen) []Seen {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	for _, pr := range rt.peers {
		seen := func(e entry) Seen {
			return Seen{Router: rt.addr, Peer: pr.key.addr, PeerAS: pr.as, Origin: e.origin,
				First:     time.Unix(int64(e.first), 0),
				PrePolicy: e.views&viewPre != 0, PostPolicy: e.views&viewPost != 0, LocRIB: e.views&viewLoc != 0}
		}
		if e, ok := pr.routes.Get(p); ok {
			out = append(out, seen(e))
		}
		if ps, ok := pr.multi.Get(p); ok {
			for _, pe := range ps {
				out = append(out, seen(pe.entry))
			}
		}
	}
	return out
}

// change is what announce or withdraw did to a route.
type change uint8

const (
	unchanged change = iota
	added            // new route, or its origin changed
	removed          // no view holds it any more
)

// announce records a route of view v. It reports added for a new route
// or a new origin; grew says whether a route entry was created (for the
// router's count).
func (p *peer) announce(pfx netip.Prefix, id uint32, v uint8, origin uint32, now uint32) (c change, grew bool) {
	if !p.addPath(pfx) {
		p.routes.Modify(pfx, func(e entry, ok bool) (entry, bool) {
			switch {
			case !ok:
				e, c, grew = entry{origin: origin, first: now}, added, true
			case e.origin != origin:
				e.origin, c = origin, added
			}
			e.views |= v
			return e, false
		})
		return c, grew
	}
	p.multi.Modify(pfx, func(ps []pathEntry, ok bool) ([]pathEntry, bool) {
		i := slices.IndexFunc(ps, func(pe pathEntry) bool { return pe.id == id })
		if i < 0 {
			// A new path: reported unless another path of the prefix
			// already has its origin.
			grew = true
			if !slices.ContainsFunc(ps, func(pe pathEntry) bool { return pe.origin == origin }) {
				c = added
			}
			return append(ps, pathEntry{id: id, entry: entry{origin: origin, first: now, views: v}}), false
		}
		if ps[i].origin != origin {
			ps[i].origin, c = origin, added
		}
		ps[i].views |= v
		return ps, false
	})
	return c, grew
}

// withdraw removes view v of a route; it reports removed (with the origin
// it had) when the prefix is gone from the peer, and shrank when a route
// entry was deleted.
func (p *peer) withdraw(pfx netip.Prefix, id uint32, v uint8) (c change, origin uint32, shrank bool) {
	if !p.addPath(pfx) {
		p.routes.Modify(pfx, func(e entry, ok bool) (entry, bool) {
			if !ok {
				return e, true
			}
			e.views &^= v
			if e.views != 0 {
				return e, false
			}
			c, origin, shrank = removed, e.origin, true
			return e, true
		})
		return c, origin, shrank
	}
	p.multi.Modify(pfx, func(ps []pathEntry, ok bool) ([]pathEntry, bool) {
		if !ok {
			return ps, true
		}
		i := slices.IndexFunc(ps, func(pe pathEntry) bool { return pe.id == id })
		if i < 0 {
			return ps, false
		}
		ps[i].views &^= v
		if ps[i].views != 0 {
			return ps, false
		}
		origin, shrank = ps[i].origin, true
		ps = slices.Delete(ps, i, i+1)
		if len(ps) == 0 {
			c = removed
			return ps, true
		}
		return ps, false
	})
	return c, origin, shrank
}

// all calls f for every route of the peer (one per prefix and origin).
func (p *peer) all(f func(pfx netip.Prefix, origin uint32)) {
	for pfx, e := range p.routes.All() {
		f(pfx, e.origin)
	}
	for pfx, ps := range p.multi.All() {
		var done []uint32
		for _, pe := range ps {
			if !slices.Contains(done, pe.origin) {
				done = append(done, pe.origin)
				f(pfx, pe.origin)
			}
		}
	}
}
