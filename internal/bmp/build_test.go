package bmp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	gbmp "github.com/osrg/gobgp/v3/pkg/packet/bmp"
)

// Messages for tests, encoded by GoBGP's BMP and BGP encoders (the ones
// gobgpd's BMP client uses), independent of the decoders under test.

func serialize(t testing.TB, m *gbmp.BMPMessage) []byte {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func initiation(t testing.TB, name string) []byte {
	return serialize(t, gbmp.NewBMPInitiation([]gbmp.BMPInfoTLVInterface{
		gbmp.NewBMPInfoTLVString(gbmp.BMP_INIT_TLV_TYPE_SYS_NAME, name),
		gbmp.NewBMPInfoTLVString(gbmp.BMP_INIT_TLV_TYPE_SYS_DESCR, "test router"),
	}))
}

func peerHeader(peer netip.Addr, as uint32, flags uint8) gbmp.BMPPeerHeader {
	if peer.Is6() {
		flags |= gbmp.BMP_PEER_FLAG_IPV6
	}
	return *gbmp.NewBMPPeerHeader(gbmp.BMP_PEER_TYPE_GLOBAL, flags, 0, peer.String(), as, "192.0.2.99", float64(time.Now().Unix()))
}

func open(as uint32, caps ...bgp.ParameterCapabilityInterface) *bgp.BGPMessage {
	caps = append(caps, bgp.NewCapFourOctetASNumber(as),
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC))
	return bgp.NewBGPOpenMessage(23456, 90, "192.0.2.1", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
}

// peerUp is a Peer Up of peer (AS as) at a router of AS 65010; addPath
// negotiates ADD-PATH for IPv4 unicast (the router receives, the peer
// sends).
func peerUp(t testing.TB, peer netip.Addr, as uint32, addPath bool) []byte {
	var sc, rc []bgp.ParameterCapabilityInterface
	if addPath {
		sc = append(sc, bgp.NewCapAddPath([]*bgp.CapAddPathTuple{bgp.NewCapAddPathTuple(bgp.RF_IPv4_UC, bgp.BGP_ADD_PATH_RECEIVE)}))
		rc = append(rc, bgp.NewCapAddPath([]*bgp.CapAddPathTuple{bgp.NewCapAddPathTuple(bgp.RF_IPv4_UC, bgp.BGP_ADD_PATH_SEND)}))
	}
	local := "192.0.2.1"
	if peer.Is6() {
		local = "2001:db8::1"
	}
	return serialize(t, gbmp.NewBMPPeerUpNotification(peerHeader(peer, as, 0), local, 179, 40000, open(65010, sc...), open(as, rc...)))
}

func peerDown(t testing.TB, peer netip.Addr, as uint32) []byte {
	return serialize(t, gbmp.NewBMPPeerDownNotification(peerHeader(peer, as, 0), gbmp.BMP_PEER_DOWN_REASON_REMOTE_NO_NOTIFICATION, nil, nil))
}

// route is a Route Monitoring message announcing (path non-nil) or
// withdrawing prefixes of one peer; id is an ADD-PATH identifier (0: none).
func route(t testing.TB, peer netip.Addr, peerAS uint32, flags uint8, path []uint32, id uint32, pfxs ...netip.Prefix) []byte {
	t.Helper()
	var v4, v6 []bgp.AddrPrefixInterface
	for _, p := range pfxs {
		if p.Addr().Is4() {
			n := bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
			if id != 0 {
				n.SetPathIdentifier(id)
				n.SetPathLocalIdentifier(id)
			}
			v4 = append(v4, n)
		} else {
			v6 = append(v6, bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String()))
		}
	}
	var u *bgp.BGPMessage
	if path == nil {
		var attrs []bgp.PathAttributeInterface
		if len(v6) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeMpUnreachNLRI(v6))
		}
		var wd []*bgp.IPAddrPrefix
		for _, n := range v4 {
			wd = append(wd, n.(*bgp.IPAddrPrefix))
		}
		u = bgp.NewBGPUpdateMessage(wd, attrs, nil)
	} else {
		attrs := []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(0),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, path)}),
		}
		if len(v6) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI("2001:db8::1", v6))
		}
		var nl []*bgp.IPAddrPrefix
		for _, n := range v4 {
			nl = append(nl, n.(*bgp.IPAddrPrefix))
		}
		if len(nl) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeNextHop("192.0.2.1"))
		}
		u = bgp.NewBGPUpdateMessage(nil, attrs, nl)
	}
	m := gbmp.NewBMPRouteMonitoring(peerHeader(peer, peerAS, flags), nil)
	var opts []*bgp.MarshallingOption
	if id != 0 {
		opts = append(opts, &bgp.MarshallingOption{AddPath: map[bgp.RouteFamily]bgp.BGPAddPathMode{bgp.RF_IPv4_UC: bgp.BGP_ADD_PATH_SEND}})
	}
	payload, err := u.Serialize(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.Body.(*gbmp.BMPRouteMonitoring).BGPUpdatePayload = payload
	return serialize(t, m)
}

// prefixes returns n distinct /24s from 10.0.0.0 on.
func prefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + i>>16), byte(i >> 8), byte(i), 0}), 24)
	}
	return out
}

func cat(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m...)
	}
	return b
}
