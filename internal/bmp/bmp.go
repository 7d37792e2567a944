// Package bmp is a BMP receiver (RFC 7854, and RFC 9069 Loc-RIB): routers
// connect to it and report the routes their BGP peers send them (Adj-RIB-In
// pre-policy and post-policy) and, where they support it, their own best
// routes (Loc-RIB). It keeps, per router and monitored peer, which prefixes
// are carried with which origin AS, and reports every change as an Update.
//
// It is built on bio-rd's BMP message decoders (protocols/bmp/packet) and
// GoBGP's BGP message decoder (pkg/packet/bgp), not on bio-rd's BMP
// receiver (protocols/bgp/server.BMPReceiver), which cannot be used as it
// is here:
//   - it keeps every path with all its attributes in full bio-rd RIBs per
//     router and VRF (about 150 MiB per million routes for the trie alone),
//     with no way to bound a router's share;
//   - it allocates whatever length a message header claims (a header saying
//     4 GB makes it allocate 4 GB), its decoders underflow on short
//     lengths, and its Statistics Report decoder allocates the entry count
//     a message claims (the fuzz target found a 32 GB allocation): here
//     lengths are checked before its decoders run, and Statistics Reports
//     are counted, not decoded;
//   - it keeps pre- and post-policy routes of a peer in one Adj-RIB-In (a
//     router sending both ends with an empty table), drops Route Monitoring
//     for peers without a Peer Up (which is how GoBGP sends Loc-RIB) and
//     cannot read AS4_PATH or confederation segments;
//   - its listener cannot be stopped without closing it from outside, and a
//     router's second connection is refused while the first is believed up.
//
// Per route this package stores the origin AS, the time it was first seen
// and which views (pre-policy, post-policy) hold it: a few bytes in a
// per-peer bart table, not paths. Each router is bounded by
// Config.MaxRoutesPerRouter; a router over it, or sending a message that
// cannot be framed (wrong version, a length over the limit, a message cut
// short), is disconnected with an error in the log and in its status,
// while the other routers carry on. A message that frames but does not
// decode is counted and logged, and the session goes on.
package bmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultListen is the conventional BMP port on loopback.
const DefaultListen = "127.0.0.1:11019"

// DefaultMaxRoutesPerRouter applies when Config.MaxRoutesPerRouter is 0:
// a full IPv4 and IPv6 table (about 1.2M routes) from three peers, in
// pre- and post-policy views (which share one entry per prefix).
const DefaultMaxRoutesPerRouter = 4_000_000

// Config configures a Receiver.
type Config struct {
	// Listen is the TCP address to listen on ("127.0.0.1:11019"; port 0
	// picks a free one, see Receiver.Addr).
	Listen string
	// Routers is the allow-list of router addresses; empty accepts any.
	// A connection from another address is refused and logged.
	Routers []netip.Addr
	// MaxRoutesPerRouter bounds the routes held for one router (one per
	// peer and prefix, plus one per further ADD-PATH path); a router going
	// over it is disconnected with an error and its routes are dropped.
	// 0 means DefaultMaxRoutesPerRouter.
	MaxRoutesPerRouter int
	// Logger receives connection events and errors (nil: logrus' standard
	// logger).
	Logger *logrus.Entry
}

// Update is one route event: a route that appeared, whose origin changed,
// or that is gone (Withdraw).
//
// A route is identified by router, peer and prefix: it is announced when
// the first monitored view (Adj-RIB-In pre-policy, post-policy) of the peer
// holds it, reported again when its origin changes, and withdrawn when no
// view holds it any more, when the peer goes down or when the router
// disconnects. Routes of a router's Loc-RIB (RFC 9069) come from a peer of
// their own, with Peer the unspecified address 0.0.0.0 and PeerAS the
// router's AS.
type Update struct {
	Router netip.Addr // BMP speaker
	Peer   netip.Addr // monitored peer
	PeerAS uint32
	Prefix netip.Prefix
	Origin uint32   // 0 when the path ends in an AS_SET or is empty
	Path   []uint32 // AS path (may be nil in withdrawals; shared by the Updates of one UPDATE: read only)
	// Withdraw: the route is gone (Origin is the one it had).
	Withdraw bool
	At       time.Time
}

// Seen is one router's peer currently carrying a prefix.
type Seen struct {
	Router netip.Addr
	Peer   netip.Addr // 0.0.0.0 for the router's Loc-RIB
	PeerAS uint32
	Origin uint32
	// First is when the route was first announced in this BMP session.
	First time.Time
	// The views that hold the route.
	PrePolicy, PostPolicy, LocRIB bool
}

// Router states in RouterStatus.State.
const (
	StateUp      = "up"      // connected
	StateDown    = "down"    // the connection ended (router closed it, or a read failed)
	StateDropped = "dropped" // disconnected by the receiver (bad message, over its route limit)
	StateRefused = "refused" // not in the allow-list
)

// RouterStatus is what the receiver knows of one router.
type RouterStatus struct {
	Addr netip.Addr
	// Name and Description are the sysName and sysDescr of the router's
	// Initiation message.
	Name, Description string
	State             string
	Since             time.Time // when State was entered
	Connections       int       // sessions accepted so far
	Peers             int       // monitored peers up (the Loc-RIB counts as one)
	Routes            int
	Messages          uint64 // BMP messages read, all sessions
	LastMessage       time.Time
	Errors            uint64 // messages that did not decode, dropped sessions, refusals
	LastError         string
	LastErrorAt       time.Time
}

// Receiver is a BMP receiver. Its methods are safe for concurrent use.
type Receiver struct {
	cfg      Config
	max      int
	log      *logrus.Entry
	ln       net.Listener
	allow    map[netip.Addr]bool
	onUpdate func([]Update)
	emitMu   sync.Mutex // onUpdate calls never overlap
	// bodyTimeout bounds the wait for the rest of a message (tests
	// shorten it).
	bodyTimeout time.Duration

	mu      sync.Mutex
	routers map[netip.Addr]*router
	serving bool
}

// maxRefused bounds how many refused addresses the status remembers.
const maxRefused = 64

// New binds the listener (so that Addr is known at once) and returns the
// receiver; Serve accepts routers. onUpdate gets route events in batches:
// in order for each router, never in two calls at once, and it may keep
// the slice. It runs on a router's connection goroutine, so a slow
// onUpdate slows that router's reads (TCP pushes back on the router),
// never the others' decoding; it must not block on the Receiver's own
// events. Lookup and Status may be called from it.
func New(cfg Config, onUpdate func([]Update)) (*Receiver, error) {
	if cfg.MaxRoutesPerRouter < 0 {
		return nil, fmt.Errorf("bmp: max routes per router %d is negative", cfg.MaxRoutesPerRouter)
	}
	if onUpdate == nil {
		onUpdate = func([]Update) {}
	}
	r := &Receiver{
		cfg:         cfg,
		max:         cfg.MaxRoutesPerRouter,
		log:         cfg.Logger,
		onUpdate:    onUpdate,
		routers:     map[netip.Addr]*router{},
		bodyTimeout: bodyTimeout,
	}
	if r.max == 0 {
		r.max = DefaultMaxRoutesPerRouter
	}
	if r.log == nil {
		r.log = logrus.NewEntry(logrus.StandardLogger())
	}
	r.log = r.log.WithField("component", "bmp")
	if len(cfg.Routers) > 0 {
		r.allow = map[netip.Addr]bool{}
		for _, a := range cfg.Routers {
			if !a.IsValid() {
				return nil, errors.New("bmp: invalid router address in the allow-list")
			}
			r.allow[a.Unmap()] = true
		}
	}
	if cfg.Listen == "" {
		return nil, errors.New("bmp: no listen address")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("bmp: listen %s: %w", cfg.Listen, err)
	}
	r.ln = ln
	return r, nil
}

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() net.Addr { return r.ln.Addr() }

// Serve accepts routers until ctx is done, then closes the listener and
// every router connection and returns once all of them have ended (nil
// after ctx is done; an error if accepting failed otherwise). Serve runs
// once; the receiver's state (Status, Lookup) stays readable afterwards.
func (r *Receiver) Serve(ctx context.Context) error {
	r.mu.Lock()
	if r.serving {
		r.mu.Unlock()
		return errors.New("bmp: Serve called twice")
	}
	r.serving = true
	r.mu.Unlock()

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	go func() {
		<-ctx.Done()
		r.ln.Close()
	}()
	r.log.WithField("listen", r.ln.Addr().String()).Info("bmp: listening for routers")
	var delay time.Duration
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("bmp: accept on %s: %w", r.ln.Addr(), err)
			}
			// Out of file descriptors and the like: wait, then retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.WithError(err).Warnf("bmp: accept failed; retrying in %s", delay)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		delay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.handle(ctx, c)
		}()
	}
}

// Status lists every router that connected (and refused addresses),
// ordered by address.
func (r *Receiver) Status() []RouterStatus {
	r.mu.Lock()
	rs := make([]*router, 0, len(r.routers))
	for _, rt := range r.routers {
		rs = append(rs, rt)
	}
	r.mu.Unlock()
	out := make([]RouterStatus, 0, len(rs))
	for _, rt := range rs {
		out = append(out, rt.status())
	}
	slices.SortFunc(out, func(a, b RouterStatus) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Lookup lists who currently carries exactly prefix p: each router's peer
// (or Loc-RIB) holding it, with the origin and when it was first seen,
// ordered by router and peer.
func (r *Receiver) Lookup(p netip.Prefix) []Seen {
	if !p.IsValid() {
		return nil
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	r.mu.Lock()
	rs := make([]*router, 0, len(r.routers))
	for _, rt := range r.routers {
		rs = append(rs, rt)
	}
	r.mu.Unlock()
	var out []Seen
	for _, rt := range rs {
		out = rt.lookup(p, out)
	}
	slices.SortFunc(out, func(a, b Seen) int {
		if c := a.Router.Compare(b.Router); c != 0 {
			return c
		}
		if c := a.Peer.Compare(b.Peer); c != 0 {
			return c
		}
		return int(a.Origin) - int(b.Origin)
	})
	return out
}

// emit hands a batch to onUpdate.
func (r *Receiver) emit(batch []Update) {
	if len(batch) == 0 {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.onUpdate(batch)
}

// routerFor returns the state of addr, creating it; refused addresses are
// remembered up to maxRefused.
func (r *Receiver) routerFor(addr netip.Addr, refused bool) *router {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt, ok := r.routers[addr]; ok {
		return rt
	}
	if refused {
		n := 0
		for _, rt := range r.routers {
			if rt.isRefused() {
				n++
			}
		}
		if n >= maxRefused {
			return nil
		}
	}
	rt := newRouter(addr)
	r.routers[addr] = rt
	return rt
}
