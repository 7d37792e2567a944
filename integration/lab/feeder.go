package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/internal/bgpstop"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Feeder is an in-process GoBGP speaker that announces hand-made routes
// (any prefix, AS path, communities, FlowSpec rule) to real daemons: the
// route source for policy tests. It dials its sessions (passive ones are
// accepted on Config.Addr:Port).
type Feeder struct {
	cfg Config
	s   *server.BgpServer
}

// NewFeeder starts a feeder; its sessions are added at once.
func NewFeeder(t testing.TB, cfg Config) *Feeder {
	t.Helper()
	cfg.fill(t)
	s := server.NewBgpServer(server.LoggerOption(quietLogger{}))
	go s.Serve()
	ctx := context.Background()
	g := &api.Global{Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: -1}
	for _, se := range cfg.Sessions {
		if se.Passive {
			g.ListenPort = int32(cfg.Port)
			g.ListenAddresses = []string{cfg.Addr.String()}
		}
	}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		t.Fatalf("lab: feeder: %v", err)
	}
	f := &Feeder{cfg: cfg, s: s}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := bgpstop.Stop(ctx, s); err != nil {
			t.Errorf("lab: feeder: %v", err)
		}
	})
	for _, se := range cfg.Sessions {
		var afs []*api.AfiSafi
		for _, fam := range se.families() {
			afs = append(afs, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: apiFamily(fam), Enabled: true}})
		}
		p := &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: se.Addr.String(), PeerAsn: se.ASN, Description: se.Description},
			Transport: &api.Transport{LocalAddress: cfg.Addr.String(), RemotePort: uint32(se.port()),
				PassiveMode: se.Passive},
			Timers:   &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 90, KeepaliveInterval: 30, IdleHoldTimeAfterReset: 1}},
			AfiSafis: afs,
		}
		if cfg.Addr.IsLoopback() {
			p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			t.Fatalf("lab: feeder: add peer %s: %v", se.Addr, err)
		}
	}
	return f
}

// Addr is where the feeder sources its sessions.
func (f *Feeder) Addr() netip.Addr { return f.cfg.Addr }

// Established reports whether the session with neighbor is up.
func (f *Feeder) Established(ctx context.Context, neighbor netip.Addr) (bool, error) {
	up := false
	err := f.s.ListPeer(ctx, &api.ListPeerRequest{Address: neighbor.String()}, func(p *api.Peer) {
		up = p.State.SessionState == api.PeerState_ESTABLISHED
	})
	return up, err
}

// Announce adds routes (replacing any with the same NLRI).
func (f *Feeder) Announce(ctx context.Context, routes ...Route) error {
	for _, r := range routes {
		p, err := FeedPath(r)
		if err != nil {
			return err
		}
		if _, err := f.s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
			return fmt.Errorf("feeder: announce %s: %w", r.Key(), err)
		}
	}
	return nil
}

// Withdraw removes routes (only the NLRI matters).
func (f *Feeder) Withdraw(ctx context.Context, routes ...Route) error {
	for _, r := range routes {
		p, err := FeedPath(r)
		if err != nil {
			return err
		}
		if err := f.s.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
			return fmt.Errorf("feeder: withdraw %s: %w", r.Key(), err)
		}
	}
	return nil
}

// FeedPath builds the GoBGP path for a lab route. Unicast routes without a
// next hop get 192.0.2.1 / 100::1; AS paths are one AS_SEQUENCE; FlowSpec
// actions are "discard", "rate-limit:N" or "dscp:N".
func FeedPath(r Route) (*api.Path, error) {
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if len(r.ASPath) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, r.ASPath)}))
	}
	if len(r.Communities) > 0 {
		var cs []uint32
		for _, c := range r.Communities {
			a, b, ok := strings.Cut(c, ":")
			x, err1 := strconv.ParseUint(a, 10, 16)
			y, err2 := strconv.ParseUint(b, 10, 16)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("feeder: bad community %q", c)
			}
			cs = append(cs, uint32(x)<<16|uint32(y))
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(cs))
	}
	if len(r.LargeCommunities) > 0 {
		var ls []*bgp.LargeCommunity
		for _, c := range r.LargeCommunities {
			l, err := bgp.ParseLargeCommunity(c)
			if err != nil {
				return nil, fmt.Errorf("feeder: %w", err)
			}
			ls = append(ls, l)
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(ls))
	}
	var nlri bgp.AddrPrefixInterface
	switch {
	case r.Flow != nil:
		var comps []bgp.FlowSpecComponentInterface
		v6 := r.Family == IPv6FlowSpec
		for i, pf := range []netip.Prefix{r.Flow.Dst, r.Flow.Src} {
			if !pf.IsValid() {
				continue
			}
			switch {
			case v6 && i == 0:
				comps = append(comps, bgp.NewFlowSpecDestinationPrefix6(bgp.NewIPv6AddrPrefix(uint8(pf.Bits()), pf.Addr().String()), 0))
			case v6:
				comps = append(comps, bgp.NewFlowSpecSourcePrefix6(bgp.NewIPv6AddrPrefix(uint8(pf.Bits()), pf.Addr().String()), 0))
			case i == 0:
				comps = append(comps, bgp.NewFlowSpecDestinationPrefix(bgp.NewIPAddrPrefix(uint8(pf.Bits()), pf.Addr().String())))
			default:
				comps = append(comps, bgp.NewFlowSpecSourcePrefix(bgp.NewIPAddrPrefix(uint8(pf.Bits()), pf.Addr().String())))
			}
		}
		nh := "0.0.0.0"
		if v6 {
			nlri, nh = bgp.NewFlowSpecIPv6Unicast(comps), "::"
		} else {
			nlri = bgp.NewFlowSpecIPv4Unicast(comps)
		}
		var ext []bgp.ExtendedCommunityInterface
		for _, a := range r.Actions {
			k, v, _ := strings.Cut(a, ":")
			n, _ := strconv.ParseFloat(v, 32)
			switch k {
			case "discard":
				ext = append(ext, bgp.NewTrafficRateExtended(0, 0))
			case "rate-limit":
				ext = append(ext, bgp.NewTrafficRateExtended(0, float32(n)))
			case "dscp":
				ext = append(ext, bgp.NewTrafficRemarkExtended(uint8(n)))
			default:
				return nil, fmt.Errorf("feeder: unknown action %q", a)
			}
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
		if len(ext) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeExtendedCommunities(ext))
		}
	case r.Prefix.Addr().Is4():
		nlri = bgp.NewIPAddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		nh := "192.0.2.1"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	case r.Prefix.Addr().Is6():
		nlri = bgp.NewIPv6AddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		nh := "100::1"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	default:
		return nil, fmt.Errorf("feeder: route without prefix or flow")
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

func apiFamily(f Family) *api.Family {
	switch f {
	case IPv6Unicast:
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	case IPv4FlowSpec:
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST}
	case IPv6FlowSpec:
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST}
	default:
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
}

// quietLogger keeps GoBGP's logs out of test output.
type quietLogger struct{}

func (quietLogger) Panic(msg string, f gobgplog.Fields) { panic(msg) }
func (quietLogger) Fatal(msg string, f gobgplog.Fields) { panic(msg) }
func (quietLogger) Error(msg string, f gobgplog.Fields) {}
func (quietLogger) Warn(msg string, f gobgplog.Fields)  {}
func (quietLogger) Info(msg string, f gobgplog.Fields)  {}
func (quietLogger) Debug(msg string, f gobgplog.Fields) {}
func (quietLogger) SetLevel(gobgplog.LogLevel)          {}
func (quietLogger) GetLevel() gobgplog.LogLevel         { return gobgplog.ErrorLevel }
