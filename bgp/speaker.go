// Package bgp is asfence's embedded BGP speaker: it announces an Intent as
// RTBH routes (RFC 5635, RFC 7999) and FlowSpec rules (RFC 8955, RFC 8956)
// through GoBGP, and reconciles the RIB with each new Intent by sending
// only the difference, never resetting a session.
//
// RTBH: one route per Intent prefix, exactly as the policy accepted it
// (not aggregated: a registry change then maps one to one onto routes),
// with the discard next hop, BLACKHOLE, NO_EXPORT, the configured
// communities and the large community <asn>:666:<target id> of every
// target holding the prefix. FlowSpec: per target, the minimal cover of
// its prefixes, a destination and a source rule each, discard by default,
// within flowspec.max_rules. Which neighbor gets what follows its
// announce:, families: and targets: (see policy.go).
package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/internal/bgpstop"
	"github.com/asfence/asfence/policy"
)

// Options configure a Speaker.
type Options struct {
	Config    Config          // the bgp: block
	Blackhole BlackholeConfig // blackhole: block
	FlowSpec  FlowSpecConfig  // flowspec: block
	Log       *logrus.Entry
	// Protect and AllowBogons repeat the policy's guards (policy.protect,
	// policy.allow_bogons): the speaker refuses such prefixes itself even
	// if an Intent carried them. 0.0.0.0/0 and ::/0 are always refused.
	Protect     []netip.Prefix
	AllowBogons bool
	// Targets are the configured target names, to validate neighbors'
	// targets: lists (nil: not checked).
	Targets []string
	// Feed receives the routes of feed neighbors (nil: they are not
	// read).
	Feed FeedHandler
}

// Counts says what an Apply changed in the RIB. Its JSON form is what a
// run's record keeps (the daemon's state store) and the API serves; the
// fields are in the order of their JSON names, the order in which the
// store wrote them when it kept them as a map.
type Counts struct {
	Added int `json:"added"`
	// ByFamily is keyed by "ipv4-unicast", "ipv6-unicast", "ipv4-flowspec",
	// "ipv6-flowspec".
	ByFamily map[string]FamilyCounts `json:"by_family,omitempty"`
	// Refused counts Intent prefixes the speaker's own guard refused
	// (default route, bogon, protected); each is logged.
	Refused   int `json:"refused,omitempty"`
	Replaced  int `json:"replaced,omitempty"`
	Unchanged int `json:"unchanged,omitempty"`
	Withdrawn int `json:"withdrawn"`
}

// FamilyCounts are the counts of one family.
type FamilyCounts struct {
	Added     int `json:"added"`
	Withdrawn int `json:"withdrawn"`
	Replaced  int `json:"replaced,omitempty"`
	Unchanged int `json:"unchanged,omitempty"`
}

// PeerStatus is one neighbor's session. Its JSON form is what the
// daemon's API serves for a peer (GET /api/v1/peers).
type PeerStatus struct {
	Address     string `json:"address"`
	Description string `json:"description,omitempty"`
	ASN         uint32 `json:"asn"`
	// State is the BGP FSM state in lower case ("established", "active", ...).
	State string `json:"state"`
	// Established: State is "established".
	Established      bool      `json:"established"`
	EstablishedSince time.Time `json:"established_since,omitzero"`
	Uptime           Uptime    `json:"uptime,omitempty"`
	// Families are those configured for the session.
	Families []string `json:"families,omitempty"`
	// Sent maps a family to the prefixes (or FlowSpec rules) currently
	// advertised in it.
	Sent map[string]int `json:"sent"`
	// Received maps a family to the routes the neighbor sent us and GoBGP
	// holds (the speaker uses none of them; see max_prefixes).
	Received  map[string]int `json:"received,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	// LastNotification is the last NOTIFICATION sent to or received from
	// the neighbor since the speaker started (nil: none), e.g. the peer
	// refusing our OPEN.
	LastNotification *Notification `json:"last_notification,omitempty"`
	// Feed: a feed neighbor (NeighborConfig.Feed), a source of the live
	// watch; it is sent nothing.
	Feed bool `json:"feed,omitempty"`
	// UpdatesSent counts the UPDATE messages sent on the session.
	UpdatesSent uint64 `json:"updates_sent"`
}

// Uptime is how long a session has been established, to the second. It
// prints, and is written in JSON, as Go's duration text ("1h2m3s"); zero
// (not established) prints as "".
type Uptime time.Duration

func (u Uptime) String() string {
	if u == 0 {
		return ""
	}
	return time.Duration(u).String()
}

// MarshalText writes u as String does.
func (u Uptime) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (u *Uptime) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*u = 0
		return nil
	}
	d, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("uptime: %w", err)
	}
	*u = Uptime(d)
	return nil
}

// Speaker is the embedded BGP speaker.
type Speaker struct {
	opts    Options
	log     *logrus.Entry
	glog    *gobgpLogger
	builder *pathBuilder

	mu     sync.Mutex // serialises Start, Apply, UpdateNeighbors, Stop
	server *server.BgpServer
	api    *apiSocket // GoBGP's gRPC API, for bulk path changes (stream.go)
	cfg    Config
	last   *policy.Intent
	limits limits // the export policy in force
	// installed is the verified copy of the RIB (nil: read the RIB).
	installed *desiredSet
	live      map[string]bool // neighbors added to GoBGP
	// resuming holds the neighbors that have not been back since Resume:
	// their OPEN must still carry the restart flags; turn is the one of
	// them allowed to connect, since turnSince (see resume.go).
	resuming  map[string]bool
	turn      string
	turnSince time.Time
	kick      chan struct{} // wakes resync (coalesced)
	// why takes neighbors that refused the session to explain; states
	// (the event goroutine's) and probes (explainLoop's) are their own.
	why    chan string
	states map[string]api.PeerState_SessionState
	probes map[string]*probeState
	cancel context.CancelFunc
	// watchCtx ends the GoBGP event watches at stop.
	watchCtx context.Context
	// feeds are the feed neighbors; feedWatching: their updates are
	// watched (see feed.go).
	feeds        feeds
	feedWatching bool
	started      bool
	stopped      bool
}

// Defaults.
const (
	DefaultRestartTime  = 120
	DefaultHoldTime     = 90
	DefaultConnectRetry = 5
	// DefaultMaxPrefixes is a neighbor's max_prefixes: far above what a
	// router sends an RTBH speaker (nothing, or a few of its own routes),
	// far below a full table. GoBGP reads ahead of the cap, so a peer
	// flooding a full table costs more memory the higher it is (measured
	// with 262k routes: +12 MiB at 1000, +53 MiB at 10,000, +93 MiB
	// without a cap).
	DefaultMaxPrefixes = 1000
)

// restartDeferral is how long (seconds) a resumed speaker waits for a
// neighbor's End-of-RIB before sending it our routes (RFC 4724's
// Selection_Deferral_Timer). The speaker selects nothing from what peers
// send, so there is nothing to wait for: GoBGP's smallest value (0 would
// mean its default of 360 s, longer than FRR keeps stale routes).
const restartDeferral = 1

// New validates the options; nothing touches the network before Start.
func New(o Options) (*Speaker, error) {
	var p field.List
	p.Append("bgp", o.Config.Validate(o.Targets))
	p.Append("blackhole", o.Blackhole.Validate())
	p.Append("flowspec", o.FlowSpec.Validate())
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("bgp: invalid config: %w", err)
	}
	if o.Log == nil {
		o.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	s := &Speaker{opts: o, log: o.Log.WithField("component", "bgp"), cfg: o.Config}
	s.glog = newGoBGPLogger(o.Log)
	s.builder = newPathBuilder(o)
	return s, nil
}

// newPathBuilder builds paths for validated options.
func newPathBuilder(o Options) *pathBuilder {
	b := &pathBuilder{
		asn:       o.Config.ASN,
		nextHop4:  cmp.Or(o.Blackhole.NextHopV4, DefaultNextHopV4),
		nextHop6:  cmp.Or(o.Blackhole.NextHopV6, DefaultNextHopV6),
		maxRules:  o.FlowSpec.MaxRules,
		guard:     guard{protect: o.Protect, allowBogons: o.AllowBogons},
		fpCache:   map[bgp.PathAttributeInterface][]byte{},
		attrCache: map[string]bgp.PathAttributeInterface{},
	}
	if b.maxRules == 0 {
		b.maxRules = DefaultMaxRules
	}
	b.comms = []uint32{uint32(bgp.COMMUNITY_BLACKHOLE), uint32(bgp.COMMUNITY_NO_EXPORT)}
	for _, c := range o.Blackhole.Communities {
		v, _ := ParseCommunity(c) // validated by the caller
		b.comms = append(b.comms, v)
	}
	slices.Sort(b.comms)
	b.comms = slices.Compact(b.comms)
	for _, c := range o.Blackhole.LargeCommunities {
		l, _ := ParseLargeCommunity(c)
		b.large = append(b.large, bgp.NewLargeCommunity(l.Global, l.Local1, l.Local2))
	}
	// Traffic-rate carries a 2-octet AS (informational, RFC 8955 §7.3):
	// AS_TRANS stands in for a 4-octet one.
	as16 := uint16(23456)
	if o.Config.ASN <= 65535 {
		as16 = uint16(o.Config.ASN)
	}
	switch o.FlowSpec.Action {
	case "rate-limit":
		b.flowEC = bgp.NewTrafficRateExtended(as16, o.FlowSpec.Rate)
	case "dscp":
		b.flowEC = bgp.NewTrafficRemarkExtended(o.FlowSpec.DSCP)
	default:
		b.flowEC = bgp.NewTrafficRateExtended(as16, 0) // discard
	}
	return b
}

// UpdateAttributes applies new blackhole: and flowspec: blocks (config
// reload): the paths whose attributes change (next hop, communities,
// FlowSpec action) are replaced in place, one UPDATE each, and no session
// is reset. If the new set cannot be built (e.g. over max_rules) nothing
// changes.
func (s *Speaker) UpdateAttributes(ctx context.Context, bh BlackholeConfig, fs FlowSpecConfig) (Counts, error) {
	var p field.List
	p.Append("blackhole", bh.Validate())
	p.Append("flowspec", fs.Validate())
	if err := p.Err(); err != nil {
		return Counts{}, fmt.Errorf("bgp: invalid config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sameAttributes(s.opts.Blackhole, bh) && s.opts.FlowSpec == fs {
		return Counts{}, nil
	}
	oldOpts, oldBuilder := s.opts, s.builder
	s.opts.Blackhole, s.opts.FlowSpec = bh, fs
	s.builder = newPathBuilder(s.opts)
	if !s.started || s.stopped {
		return Counts{}, nil // used at the next Start
	}
	c, err := s.apply(ctx, s.last)
	if err != nil {
		s.opts, s.builder = oldOpts, oldBuilder
		if _, rerr := s.apply(ctx, s.last); rerr != nil {
			s.log.WithError(rerr).Error("bgp: restoring the previous attributes")
		}
		return c, err
	}
	s.log.WithFields(countFields(c)).Info("bgp: attributes updated")
	return c, nil
}

func sameAttributes(a, b BlackholeConfig) bool {
	return a.NextHopV4 == b.NextHopV4 && a.NextHopV6 == b.NextHopV6 &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

// Start starts GoBGP, loads the Intent's paths (in may be nil: start
// empty) and only then adds the neighbors, so that their first table
// transfer is packed and complete. It is a fresh start: the OPEN claims
// no preserved routes, and peers that still hold routes from an earlier
// session replace them with ours.
func (s *Speaker) Start(ctx context.Context, in *policy.Intent) error {
	return s.start(ctx, in, false)
}

func (s *Speaker) start(ctx context.Context, in *policy.Intent, resume bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("bgp: speaker already started")
	}
	s.started = true
	sock, addr, err := newAPISocket()
	if err != nil {
		s.stopped = true
		return err
	}
	s.api = sock
	s.server = server.NewBgpServer(server.LoggerOption(s.glog), server.GrpcListenAddress(addr))
	go s.server.Serve()
	if err := s.api.dial(ctx); err != nil {
		s.shutdown(false)
		return err
	}
	g := &api.Global{Asn: s.cfg.ASN, RouterId: s.cfg.RouterID, ListenPort: -1}
	if s.cfg.Listen.Port > 0 {
		// GoBGP's port 0 would mean 179 on every address.
		g.ListenPort = int32(s.cfg.Listen.Port)
		if s.cfg.Listen.Address != "" {
			g.ListenAddresses = []string{s.cfg.Listen.Address}
		}
	}
	if err := s.server.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.shutdown(false)
		return fmt.Errorf("bgp: start: %w", err)
	}
	s.kick = make(chan struct{}, 1)
	s.resuming = map[string]bool{}
	if resume && grEnabled(&s.cfg) {
		for _, n := range s.cfg.Neighbors {
			s.resuming[n.Address] = true
		}
		if len(s.cfg.Neighbors) > 0 {
			s.turn, s.turnSince = s.cfg.Neighbors[0].Address, time.Now()
			time.AfterFunc(turnTimeout(s.cfg.Neighbors[0]), s.wake)
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.watchCtx = cancel, wctx
	s.feeds.set(&s.cfg)
	s.feeds.up = map[string]bool{}
	s.why = make(chan string, 16)
	s.states = map[string]api.PeerState_SessionState{}
	s.probes = map[string]*probeState{}
	// Peer state changes are logged; they and End-of-RIB markers (after
	// which GoBGP may end its restart mode) wake resync.
	watch := &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_EOR}}},
	}
	if err := s.server.WatchEvent(wctx, watch, s.event); err != nil {
		s.shutdown(false)
		return fmt.Errorf("bgp: watch peers: %w", err)
	}
	if err := s.watchFeeds(ctx); err != nil {
		s.shutdown(false)
		return err
	}
	go s.resyncLoop(wctx)
	go s.explainLoop(wctx)
	s.limits = computeLimits(&s.cfg, nil)
	s.live = map[string]bool{}
	if err := s.installPolicy(ctx, s.limits, nil); err != nil {
		s.shutdown(false)
		return err
	}
	if err := s.assignPolicies(ctx); err != nil {
		s.shutdown(false)
		return err
	}
	if in != nil {
		c, err := s.apply(ctx, in)
		if err != nil {
			s.shutdown(false)
			return err
		}
		s.log.WithFields(countFields(c)).Info("bgp: initial paths loaded")
	}
	for _, n := range s.cfg.Neighbors {
		if err := s.addPeer(ctx, n); err != nil {
			s.shutdown(false)
			return err
		}
	}
	f := logrus.Fields{"asn": s.cfg.ASN, "router_id": s.cfg.RouterID, "neighbors": len(s.cfg.Neighbors), "listen_port": g.ListenPort}
	if len(s.resuming) > 0 {
		s.log.WithFields(f).Info("bgp: speaker restarted: peers are told the announced routes were kept (graceful restart)")
	} else {
		s.log.WithFields(f).Info("bgp: speaker started")
	}
	return nil
}

func countFields(c Counts) logrus.Fields {
	f := logrus.Fields{"added": c.Added, "withdrawn": c.Withdrawn, "replaced": c.Replaced, "unchanged": c.Unchanged}
	if c.Refused > 0 {
		f["refused"] = c.Refused
	}
	return f
}

// event handles GoBGP's events on its watcher goroutine: it logs each
// state change of a session and wakes resync.
func (s *Speaker) event(r *api.WatchEventResponse) {
	s.wake()
	pe := r.GetPeer()
	if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE || pe.Peer == nil || pe.Peer.State == nil {
		return
	}
	st := pe.Peer.State
	prev := s.states[st.NeighborAddress]
	s.states[st.NeighborAddress] = st.SessionState
	if (prev == api.PeerState_OPENSENT || prev == api.PeerState_OPENCONFIRM) &&
		(st.SessionState == api.PeerState_IDLE || st.SessionState == api.PeerState_ACTIVE) {
		select { // an attempt failed: ask why if the neighbor refused it
		case s.why <- st.NeighborAddress:
		default:
		}
	}
	f := logrus.Fields{"peer": st.NeighborAddress, "asn": st.PeerAsn, "state": stateName(st.SessionState)}
	if st.Description != "" {
		f["description"] = st.Description
	}
	if st.SessionState != api.PeerState_ESTABLISHED {
		if e := s.glog.lastError(st.NeighborAddress); e != "" {
			f["last_error"] = e
		}
	}
	s.log.WithFields(f).Info("bgp: peer state")
}

func stateName(st api.PeerState_SessionState) string {
	return strings.ToLower(st.String())
}

// needs returns the route families some neighbor gets.
func needs(c *Config) map[bgp.RouteFamily]bool {
	m := map[bgp.RouteFamily]bool{}
	for _, n := range c.Neighbors {
		for _, rf := range announcedFamilies(c, n) {
			m[rf] = true
		}
	}
	return m
}

// neighborFamilies are the route families negotiated with a neighbor:
// those it gets, and for a feed neighbor the unicast families of its
// address families, which it sends.
func neighborFamilies(c *Config, n NeighborConfig) []bgp.RouteFamily {
	out := announcedFamilies(c, n)
	if n.Feed {
		for _, af := range n.AddressFamilies() {
			if rf := familyFor(AnnounceBlackhole, af); !slices.Contains(out, rf) {
				out = append(out, rf)
			}
		}
		slices.SortFunc(out, func(a, b bgp.RouteFamily) int { return slices.Index(families, a) - slices.Index(families, b) })
	}
	return out
}

// announcedFamilies are the route families a neighbor gets: its announce
// kinds × its address families. An eBGP neighbor gets RTBH only with
// allow_ebgp.
func announcedFamilies(c *Config, n NeighborConfig) []bgp.RouteFamily {
	var out []bgp.RouteFamily
	for _, kind := range n.AnnounceKinds() {
		if kind == AnnounceBlackhole && n.ASN != c.ASN && !n.AllowEBGP {
			continue
		}
		for _, af := range n.AddressFamilies() {
			rf := familyFor(kind, af)
			if !slices.Contains(out, rf) {
				out = append(out, rf)
			}
		}
	}
	slices.SortFunc(out, func(a, b bgp.RouteFamily) int { return slices.Index(families, a) - slices.Index(families, b) })
	return out
}

// grEnabled reports whether graceful restart is on (the default).
func grEnabled(c *Config) bool {
	return c.GracefulRestart.Enabled == nil || *c.GracefulRestart.Enabled
}

// peerConfig builds GoBGP's neighbor from the config.
func peerConfig(c *Config, n NeighborConfig) *api.Peer {
	restart := c.GracefulRestart.RestartTime
	if restart == 0 {
		restart = DefaultRestartTime
	}
	gr := grEnabled(c)
	maxPrefixes := cmp.Or(n.MaxPrefixes, DefaultMaxPrefixes)
	if n.Feed {
		maxPrefixes = cmp.Or(n.MaxPrefixes, DefaultFeedMaxPrefixes)
	}
	var afs []*api.AfiSafi
	for _, rf := range neighborFamilies(c, n) {
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		fam := &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)}
		// GoBGP keeps every route a peer sends (its Adj-RIB-In comes
		// before any import policy): the cap bounds that memory.
		af := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: fam, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: fam, MaxPrefixes: maxPrefixes}}
		if gr {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		afs = append(afs, af)
	}
	hold := n.HoldTime
	if hold == 0 {
		hold = DefaultHoldTime
	}
	retry := n.ConnectRetry
	if retry == 0 {
		retry = DefaultConnectRetry
	}
	port := uint32(n.Port)
	if port == 0 {
		port = 179
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address, PeerAsn: n.ASN, AuthPassword: n.Password, Description: n.Description},
		Transport: &api.Transport{
			LocalAddress: n.LocalAddress, RemotePort: port, PassiveMode: n.Passive,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: retry, HoldTime: hold, KeepaliveInterval: hold / 3, IdleHoldTimeAfterReset: retry,
		}},
		AfiSafis: afs,
	}
	if gr {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: restart, DeferralTime: restartDeferral}
	}
	if n.Multihop {
		ttl := uint32(n.TTL)
		if ttl == 0 {
			ttl = 255
		}
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: ttl}
	}
	return p
}

func (s *Speaker) addPeer(ctx context.Context, n NeighborConfig) error {
	p := peerConfig(&s.cfg, n)
	if s.resuming[n.Address] && p.GracefulRestart != nil {
		p.GracefulRestart.LocalRestarting = true
		p.Conf.AdminDown = n.Address != s.turn // waits for its turn
	}
	if err := s.server.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("bgp: neighbor %s: %w", n.Address, err)
	}
	s.live[n.Address] = true
	var fams []string
	for _, rf := range neighborFamilies(&s.cfg, n) {
		fams = append(fams, rf.String())
	}
	s.log.WithFields(logrus.Fields{"peer": n.Address, "asn": n.ASN, "families": fams, "targets": n.Targets}).Info("bgp: neighbor added")
	return nil
}

// Apply reconciles the RIB with the Intent: it adds what is missing,
// replaces what changed and withdraws what is extra. If it fails before
// touching the RIB (e.g. flowspec.max_rules exceeded), nothing announced
// changes.
func (s *Speaker) Apply(ctx context.Context, in *policy.Intent) (Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return Counts{}, errors.New("bgp: speaker not running")
	}
	c, err := s.apply(ctx, in)
	if err == nil {
		s.log.WithFields(countFields(c)).Info("bgp: applied")
	}
	return c, err
}

// apply runs with s.mu held.
func (s *Speaker) apply(ctx context.Context, in *policy.Intent) (Counts, error) {
	want, err := s.desired(in)
	if err != nil {
		return Counts{}, err
	}
	for _, r := range want.refused {
		s.log.WithFields(logrus.Fields{"target": r.Target, "prefix": r.Prefix.String(), "reason": r.Reason}).Warn("bgp: prefix refused by the speaker's guard")
	}
	// Widen the target limits first (new paths reach who may now get
	// them; withdrawals still pass the old limits), reconcile, then narrow.
	final := computeLimits(&s.cfg, want.targetIDs)
	wide := union(s.limits, final)
	if !wide.equal(s.limits) {
		if err := s.installPolicy(ctx, wide, nil); err != nil {
			return Counts{}, err
		}
	}
	old := s.limits
	s.limits = wide
	c, err := s.reconcile(ctx, want)
	c.Refused = len(want.refused)
	if err != nil {
		return c, err
	}
	if err := s.narrow(ctx, want, final); err != nil {
		return c, err
	}
	// Paths already in the RIB that a neighbor may now get: GoBGP does not
	// re-evaluate them by itself.
	for _, addr := range wider(old, final) {
		if !s.live[addr] {
			continue
		}
		err := s.server.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr, Soft: true, Direction: api.ResetPeerRequest_OUT})
		if err != nil {
			s.log.WithError(err).WithField("peer", addr).Debug("bgp: soft reset out")
		}
	}
	s.last = in
	return c, nil
}

// desired builds the desired set for the current config.
func (s *Speaker) desired(in *policy.Intent) (*desiredSet, error) {
	s.builder.need = needs(&s.cfg)
	want, err := s.builder.build(in)
	if err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	return want, nil
}

// narrow installs the final limits. Each path a live neighbor must lose
// is re-added with the withdrawal marker while the wide limits still
// accept its current version (GoBGP then withdraws it from that neighbor
// and sends everyone else the marked copy), then re-added as it was.
// Nobody else ever sees a withdrawal.
func (s *Speaker) narrow(ctx context.Context, want *desiredSet, final limits) error {
	if final.equal(s.limits) {
		return nil
	}
	var narrowed []string
	for _, addr := range wider(final, s.limits) {
		if s.live[addr] {
			narrowed = append(narrowed, addr)
		}
	}
	// The classes (targets) narrowed neighbors must lose, and their paths.
	lost := map[uint32]bool{}
	for i, cl := range want.classes {
		for _, addr := range narrowed {
			if s.limits.accepts(addr, cl.ids) && !final.accepts(addr, cl.ids) {
				lost[uint32(i)] = true
				break
			}
		}
	}
	var affected []desiredEntry
	if len(lost) > 0 {
		for _, e := range want.paths {
			if lost[e.class] {
				affected = append(affected, e)
			}
		}
	}
	marked := map[uint32]*pathClass{}
	// readd sends the affected paths again, with the marker or without,
	// through one stream.
	readd := func(withMarker bool) error {
		return s.api.withStream(ctx, "re-announce", func(st *pathStream) error {
			for _, e := range affected {
				cl := want.classes[e.class]
				if withMarker {
					m, ok := marked[e.class]
					if !ok {
						var err error
						if m, err = s.builder.withMarker(cl); err != nil {
							return fmt.Errorf("bgp: re-announce %s: %w", e.key, err)
						}
						marked[e.class] = m
					}
					cl = m
				}
				p, err := cl.apiPath(e.key, s.builder.nextHop6, false)
				if err == nil {
					err = st.send(p)
				}
				if err != nil {
					return fmt.Errorf("bgp: re-announce %s: %w", e.key, err)
				}
			}
			return nil
		})
	}
	if len(affected) > 0 {
		if err := s.installPolicy(ctx, s.limits, narrowed); err != nil {
			return err
		}
		if err := readd(true); err != nil {
			return err
		}
	}
	if err := s.installPolicy(ctx, final, nil); err != nil {
		return err
	}
	s.limits = final
	if len(affected) > 0 {
		if err := readd(false); err != nil {
			return err
		}
	}
	if len(affected) > 0 {
		s.log.WithFields(logrus.Fields{"neighbors": narrowed, "paths": len(affected)}).Info("bgp: target limits narrowed: paths withdrawn from those neighbors")
	}
	return nil
}

// Peers returns the status of every configured neighbor.
func (s *Speaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	s.mu.Lock()
	srv, cfg := s.server, s.cfg
	running := s.started && !s.stopped
	waiting := map[string]bool{}
	for addr := range s.resuming {
		waiting[addr] = addr != s.turn
	}
	s.mu.Unlock()
	if !running {
		return nil, errors.New("bgp: speaker not running")
	}
	grOn := grEnabled(&cfg)
	var out []PeerStatus
	err := srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		ps := PeerStatus{Sent: map[string]int{}, Received: map[string]int{}}
		if p.Conf != nil {
			ps.Address, ps.ASN, ps.Description = p.Conf.NeighborAddress, p.Conf.PeerAsn, p.Conf.Description
		}
		if p.State != nil {
			ps.State = stateName(p.State.SessionState)
			ps.Established = p.State.SessionState == api.PeerState_ESTABLISHED
			if waiting[ps.Address] && p.State.SessionState != api.PeerState_ESTABLISHED {
				ps.State = "idle (waiting its turn to resume)"
			}
			if m := p.State.Messages; m != nil && m.Sent != nil {
				ps.UpdatesSent = m.Sent.Update
			}
			if ps.Address == "" {
				ps.Address = p.State.NeighborAddress
			}
		}
		if ps.State == "established" && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			ps.EstablishedSince = p.Timers.State.Uptime.AsTime()
			ps.Uptime = Uptime(time.Since(ps.EstablishedSince).Truncate(time.Second))
		}
		// GoBGP counts the End-of-RIB marker it sends a graceful-restart
		// peer as an advertised path.
		eor := 0
		if grOn && hasGR(p) {
			eor = 1
		}
		for _, af := range p.AfiSafis {
			if af.State == nil || af.State.Family == nil {
				continue
			}
			rf := bgp.AfiSafiToRouteFamily(uint16(af.State.Family.Afi), uint8(af.State.Family.Safi))
			ps.Sent[rf.String()] = max(int(af.State.Advertised)-eor, 0)
			ps.Received[rf.String()] = int(af.State.Received)
			ps.Families = append(ps.Families, rf.String())
		}
		if a, err := netip.ParseAddr(ps.Address); err == nil {
			ps.Feed = s.feeds.is(a.Unmap().String())
		}
		ps.LastError = s.glog.lastError(ps.Address)
		ps.LastNotification = s.glog.lastNotification(ps.Address)
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list peers: %w", err)
	}
	// Configured order, which is what an operator reads top to bottom.
	order := map[string]int{}
	for i, n := range cfg.Neighbors {
		order[n.Address] = i
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return order[a.Address] - order[b.Address] })
	return out, nil
}

// hasGR reports whether a peer's capabilities include graceful restart.
func hasGR(p *api.Peer) bool {
	if p.State == nil {
		return false
	}
	cs, err := apiutil.UnmarshalCapabilities(p.State.RemoteCap)
	if err != nil {
		return false
	}
	for _, c := range cs {
		if _, ok := c.(*bgp.CapGracefulRestart); ok {
			return true
		}
	}
	return false
}

// UpdateNeighbors applies a new bgp: block (config reload): it adds,
// removes and changes neighbors without touching the other sessions. A
// changed target list is applied by policy (no reset); other changes
// (address family, announce kinds, transport, timers, password) re-create
// that one session. The ASN, router ID and listener cannot change live.
func (s *Speaker) UpdateNeighbors(ctx context.Context, c Config) error {
	if err := c.Validate(s.opts.Targets); err != nil {
		return fmt.Errorf("bgp: invalid config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return errors.New("bgp: speaker not running")
	}
	if c.ASN != s.cfg.ASN || c.RouterID != s.cfg.RouterID || c.Listen != s.cfg.Listen {
		return errors.New("bgp: asn, router_id and listen cannot change while running: restart the speaker")
	}
	old := s.cfg
	byAddr := func(ns []NeighborConfig) map[string]NeighborConfig {
		m := map[string]NeighborConfig{}
		for _, n := range ns {
			m[n.Address] = n
		}
		return m
	}
	oldN, newN := byAddr(old.Neighbors), byAddr(c.Neighbors)
	// Check the new paths can be built (e.g. a new FlowSpec neighbor within
	// max_rules) before touching anything.
	s.cfg = c
	if _, err := s.desired(s.last); err != nil {
		s.cfg = old
		return err
	}
	for addr := range oldN {
		if n, keep := newN[addr]; keep && sameSession(&old, oldN[addr], &c, n) {
			continue
		}
		if err := s.server.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
			return fmt.Errorf("bgp: remove neighbor %s: %w", addr, err)
		}
		delete(s.live, addr)
		if _, keep := newN[addr]; !keep {
			delete(s.resuming, addr)
			s.wake()
		}
		s.log.WithField("peer", addr).Info("bgp: neighbor removed")
	}
	s.feeds.set(&c)
	if err := s.watchFeeds(ctx); err != nil {
		return err
	}
	// Paths before new neighbors: their first transfer is then complete.
	c2, err := s.apply(ctx, s.last)
	if err != nil {
		return err
	}
	if c2.Added+c2.Withdrawn+c2.Replaced > 0 {
		s.log.WithFields(countFields(c2)).Info("bgp: paths updated for the new neighbors")
	}
	for _, n := range c.Neighbors {
		if !s.live[n.Address] {
			if err := s.addPeer(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameSession reports whether a neighbor's session can stay as it is:
// only its target list or description changed.
func sameSession(oc *Config, o NeighborConfig, nc *Config, n NeighborConfig) bool {
	a, b := peerConfig(oc, o), peerConfig(nc, n)
	a.Conf.Description, b.Conf.Description = "", ""
	return a.String() == b.String()
}

// Stop stops the speaker. graceful: the sessions are not closed with a
// NOTIFICATION (CEASE would make peers flush our routes at once); they
// end when the process exits, and peers with graceful restart keep the
// routes for restart_time while asfence restarts. Call it right before
// exiting. Otherwise every session is closed with CEASE and peers
// withdraw everything.
func (s *Speaker) Stop(ctx context.Context, graceful bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.stopped {
		return nil
	}
	s.shutdown(graceful)
	if graceful {
		s.log.Info("bgp: stopped gracefully: sessions close when the process exits, peers keep the routes")
	} else {
		s.log.Info("bgp: stopped: sessions closed")
	}
	return nil
}

// stopTimeout bounds how long a stop waits for the neighbors' sessions
// to end after their CEASE.
const stopTimeout = 10 * time.Second

func (s *Speaker) shutdown(graceful bool) {
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
	if !graceful {
		// Neighbors first, then the server: see package bgpstop.
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := bgpstop.Stop(ctx, s.server); err != nil {
			s.log.WithError(err).Warn("bgp: stop")
		}
	}
	s.api.close()
}
