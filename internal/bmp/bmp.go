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
// Routers are told apart by their source address. A second connection
// from an address whose session is up is read up to its Initiation: the
// same sysName (or none) is the router again and replaces the old session;
// another sysName is a second router behind the same address (NAT) and is
// refused with an error, the first keeping its session.
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
	"sync/atomic"
	"syscall"
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
	max      atomic.Int64 // MaxRoutesPerRouter, default filled in
	log      *logrus.Entry
	onUpdate func([]Update)
	emitMu   sync.Mutex // onUpdate calls never overlap
	// bodyTimeout bounds the wait for the rest of a message (tests
	// shorten it).
	bodyTimeout time.Duration

	mu      sync.Mutex
	ln      net.Listener
	listen  string              // the configured address of ln
	allow   map[netip.Addr]bool // nil: any router
	routers map[netip.Addr]*router
	serving bool
	stopped bool // Serve's context is done: the listener stays closed
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
	max, allow, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	if onUpdate == nil {
		onUpdate = func([]Update) {}
	}
	r := &Receiver{
		log:         cfg.Logger,
		onUpdate:    onUpdate,
		allow:       allow,
		routers:     map[netip.Addr]*router{},
		bodyTimeout: bodyTimeout,
	}
	r.max.Store(int64(max))
	if r.log == nil {
		r.log = logrus.NewEntry(logrus.StandardLogger())
	}
	r.log = r.log.WithField("component", "bmp")
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("bmp: listen %s: %w", cfg.Listen, err)
	}
	r.ln, r.listen = ln, cfg.Listen
	return r, nil
}

// checkConfig validates cfg: the route limit with its default filled in,
// and the allow-list (nil: any router).
func checkConfig(cfg Config) (int, map[netip.Addr]bool, error) {
	if cfg.MaxRoutesPerRouter < 0 {
		return 0, nil, fmt.Errorf("bmp: max routes per router %d is negative", cfg.MaxRoutesPerRouter)
	}
	if cfg.Listen == "" {
		return 0, nil, errors.New("bmp: no listen address")
	}
	var allow map[netip.Addr]bool
	if len(cfg.Routers) > 0 {
		allow = map[netip.Addr]bool{}
		for _, a := range cfg.Routers {
			if !a.IsValid() {
				return 0, nil, errors.New("bmp: invalid router address in the allow-list")
			}
			allow[a.Unmap()] = true
		}
	}
	max := cfg.MaxRoutesPerRouter
	if max == 0 {
		max = DefaultMaxRoutesPerRouter
	}
	return max, allow, nil
}

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln.Addr()
}

// listener is the current listener.
func (r *Receiver) listener() net.Listener {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln
}

// allowed reports whether addr may connect.
func (r *Receiver) allowed(addr netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.allow == nil || r.allow[addr]
}

// Reconfigure applies a changed Config to the receiver, running or not
// (Logger is ignored). A new Listen address is bound, and accepts
// routers, before the old listener is closed; routers' sessions go on
// through the change, whichever address they came in on (binding the same
// port on another address of the host may need the old listener closed
// first: then it is, and reopened if the new one cannot be bound). A
// router connected now and no longer in Routers is dropped, as is one
// holding more routes than a lower MaxRoutesPerRouter: each with an error
// log line and status, its routes withdrawn. On error nothing changed.
func (r *Receiver) Reconfigure(cfg Config) error {
	max, allow, err := checkConfig(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old, listen, stopped := r.ln, r.listen, r.stopped
	r.mu.Unlock()
	if stopped {
		return errors.New("bmp: the receiver has stopped")
	}
	if cfg.Listen != listen {
		ln, err := r.rebind(old, cfg.Listen)
		if err != nil {
			return err
		}
		r.log.WithFields(logrus.Fields{"listen": ln.Addr().String(), "was": old.Addr().String()}).Info("bmp: listening for routers on a new address")
	}
	r.mu.Lock()
	r.allow = allow
	rs := make([]*router, 0, len(r.routers))
	for _, rt := range r.routers {
		rs = append(rs, rt)
	}
	r.mu.Unlock()
	prev := r.max.Swap(int64(max))
	for _, rt := range rs {
		switch {
		case allow != nil && !allow[rt.addr]:
			rt.kick(errors.New("no longer in the allow-list of routers (bmp.routers)"))
		case int64(max) < prev:
			rt.mu.RLock()
			n := rt.routes
			rt.mu.RUnlock()
			if n > max {
				rt.kick(fmt.Errorf("holds %d routes, more than the new limit of %d (bmp.max_routes_per_router)", n, max))
			}
		}
	}
	return nil
}

// rebind makes the receiver listen on listen instead of old. A port in
// use by old itself (the same port on another address of the host: 0.0.0.0
// and a specific address overlap) is freed first; if listen then cannot be
// bound, old's address is bound again. r.mu is held while the listener is
// swapped, so that the accept loop, woken by old's closing, takes the new
// one.
func (r *Receiver) rebind(old net.Listener, listen string) (net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	oa, _ := netip.ParseAddrPort(old.Addr().String())
	_, port, perr := net.SplitHostPort(listen)
	samePort := errors.Is(err, syscall.EADDRINUSE) && perr == nil && port == fmt.Sprint(oa.Port())
	if err != nil && !samePort {
		return nil, fmt.Errorf("bmp: listen %s: %w (still listening on %s)", listen, err, old.Addr())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.ln != old {
		if ln != nil {
			ln.Close()
		}
		return nil, errors.New("bmp: the receiver has stopped or was reconfigured meanwhile")
	}
	old.Close()
	if samePort {
		if ln, err = net.Listen("tcp", listen); err != nil {
			back, berr := net.Listen("tcp", old.Addr().String())
			if berr != nil {
				// Nothing listens now; the accept loop ends with an error.
				return nil, fmt.Errorf("bmp: listen %s: %w; and %s could not be bound again: %v", listen, err, old.Addr(), berr)
			}
			r.ln = back
			return nil, fmt.Errorf("bmp: listen %s: %w (still listening on %s)", listen, err, old.Addr())
		}
	}
	r.ln, r.listen = ln, listen
	return ln, nil
}

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
		r.mu.Lock()
		r.stopped = true
		ln := r.ln
		r.mu.Unlock()
		ln.Close()
	}()
	r.log.WithField("listen", r.Addr().String()).Info("bmp: listening for routers")
	var delay time.Duration
	for {
		ln := r.listener()
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				if r.listener() != ln {
					// Reconfigure moved to another listener.
					continue
				}
				return fmt.Errorf("bmp: accept on %s: %w", ln.Addr(), err)
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
