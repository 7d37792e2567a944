package bmp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// nlri is one prefix of an UPDATE.
type nlri struct {
	prefix   netip.Prefix
	id       uint32 // ADD-PATH path identifier (0 without ADD-PATH)
	withdraw bool
}

// update is a decoded BGP UPDATE: its unicast prefixes and, for the
// announced ones, the AS path and origin.
type update struct {
	nlris  []nlri
	path   []uint32
	origin uint32
}

// decodeOptions says how a peer's UPDATEs are encoded.
type decodeOptions struct {
	addPath4, addPath6 bool
	twoByteAS          bool // legacy 2-byte AS_PATH (per-peer header A flag)
}

func (o decodeOptions) marshalling() *bgp.MarshallingOption {
	if !o.addPath4 && !o.addPath6 {
		return nil
	}
	m := &bgp.MarshallingOption{AddPath: map[bgp.RouteFamily]bgp.BGPAddPathMode{}}
	if o.addPath4 {
		m.AddPath[bgp.RF_IPv4_UC] = bgp.BGP_ADD_PATH_RECEIVE
	}
	if o.addPath6 {
		m.AddPath[bgp.RF_IPv6_UC] = bgp.BGP_ADD_PATH_RECEIVE
	}
	return m
}

// decodeUpdate decodes a BGP message (with its 19-byte header) carried in a
// Route Monitoring message into u (whose slices are reused). Only IPv4 and
// IPv6 unicast prefixes are kept; other families are skipped. An UPDATE
// whose attributes are malformed in a way RFC 7606 treats as a withdrawal
// yields its prefixes as withdrawn, with the error.
func decodeUpdate(msg []byte, o decodeOptions, u *update) (err error) {
	u.nlris, u.path, u.origin = u.nlris[:0], nil, 0
	var m *bgp.BGPMessage
	err = safely(func() error {
		var opts []*bgp.MarshallingOption
		if mo := o.marshalling(); mo != nil {
			opts = append(opts, mo)
		}
		var err error
		m, err = bgp.ParseBGPMessage(msg, opts...)
		return err
	})
	var upd *bgp.BGPUpdate
	if m != nil {
		upd, _ = m.Body.(*bgp.BGPUpdate)
	}
	if err != nil {
		var me *bgp.MessageError
		if upd == nil || !errors.As(err, &me) {
			return fmt.Errorf("BGP message: %w", err)
		}
		switch me.ErrorHandling {
		case bgp.ERROR_HANDLING_ATTRIBUTE_DISCARD:
			// The attribute is dropped; the route stands.
		case bgp.ERROR_HANDLING_TREAT_AS_WITHDRAW:
			upd = bgp.TreatAsWithdraw(upd)
		default:
			return fmt.Errorf("BGP UPDATE: %w", err)
		}
	}
	if m == nil {
		return errors.New("BGP message: nothing decoded")
	}
	if upd == nil {
		return fmt.Errorf("BGP message of type %d, not an UPDATE", m.Header.Type)
	}
	for _, p := range upd.WithdrawnRoutes {
		u.add(p, true)
	}
	var asPath *bgp.PathAttributeAsPath
	var as4Path *bgp.PathAttributeAs4Path
	for _, a := range upd.PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeAsPath:
			asPath = a
		case *bgp.PathAttributeAs4Path:
			as4Path = a
		case *bgp.PathAttributeMpReachNLRI:
			if a.SAFI == bgp.SAFI_UNICAST && (a.AFI == bgp.AFI_IP || a.AFI == bgp.AFI_IP6) {
				for _, p := range a.Value {
					u.add(p, false)
				}
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			if a.SAFI == bgp.SAFI_UNICAST && (a.AFI == bgp.AFI_IP || a.AFI == bgp.AFI_IP6) {
				for _, p := range a.Value {
					u.add(p, true)
				}
			}
		}
	}
	for _, p := range upd.NLRI {
		u.add(p, false)
	}
	u.path, u.origin = asPathOf(asPath, as4Path, o.twoByteAS)
	return err
}

// add appends one prefix (IPv4 or IPv6 unicast NLRI types only).
func (u *update) add(p bgp.AddrPrefixInterface, withdraw bool) {
	var ip net.IP
	var bits uint8
	switch p := p.(type) {
	case *bgp.IPAddrPrefix:
		ip, bits = p.Prefix, p.Length
	case *bgp.IPv6AddrPrefix:
		ip, bits = p.Prefix, p.Length
	default:
		return
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return
	}
	a = a.Unmap()
	pfx, err := a.Prefix(int(bits))
	if err != nil {
		return
	}
	u.nlris = append(u.nlris, nlri{prefix: pfx, id: p.PathIdentifier(), withdraw: withdraw})
}

// asPathOf flattens the AS path (AS_SEQUENCE and AS_SET members in order;
// confederation segments are local and left out) and applies asfence's
// origin rule: the last AS when the path ends in an AS_SEQUENCE, else 0.
// With 2-byte AS_PATHs (a legacy speaker), AS4_PATH is merged as RFC 6793
// §4.2.3 says: when AS_PATH has at least as many ASes, its leading ASes are
// kept and the rest is AS4_PATH.
func asPathOf(p *bgp.PathAttributeAsPath, p4 *bgp.PathAttributeAs4Path, twoByte bool) ([]uint32, uint32) {
	if p == nil {
		return nil, 0
	}
	type seg struct {
		typ uint8
		as  []uint32
	}
	var segs []seg
	for _, s := range p.Value {
		segs = append(segs, seg{s.GetType(), s.GetAS()})
	}
	if twoByte && p4 != nil {
		var segs4 []seg
		for _, s := range p4.Value {
			segs4 = append(segs4, seg{s.Type, s.AS})
		}
		count := func(ss []seg) int {
			n := 0
			for _, s := range ss {
				switch s.typ {
				case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
					n += len(s.as)
				case bgp.BGP_ASPATH_ATTR_TYPE_SET:
					n++
				}
			}
			return n
		}
		if n, n4 := count(segs), count(segs4); n4 > 0 && n >= n4 {
			// Keep the first n-n4 ASes of AS_PATH (counted as above), then
			// AS4_PATH.
			keep := n - n4
			var merged []seg
			for _, s := range segs {
				if keep <= 0 {
					break
				}
				switch s.typ {
				case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
					k := min(keep, len(s.as))
					merged = append(merged, seg{s.typ, s.as[:k]})
					keep -= k
				case bgp.BGP_ASPATH_ATTR_TYPE_SET:
					merged = append(merged, s)
					keep--
				default:
					merged = append(merged, s)
				}
			}
			segs = append(merged, segs4...)
		}
	}
	var path []uint32
	var origin uint32
	for _, s := range segs {
		if len(s.as) == 0 {
			continue
		}
		switch s.typ {
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			path = append(path, s.as...)
			origin = s.as[len(s.as)-1]
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			path = append(path, s.as...)
			origin = 0
		default: // confederation segments
			origin = 0
		}
	}
	return path, origin
}

// openCaps reads what a Peer Up's OPEN messages negotiated: ADD-PATH
// receive per family (the monitored router announced it can receive and
// the peer that it sends) and 4-byte AS numbers.
func openCaps(sent, recv []byte) (o decodeOptions, fourByte bool, err error) {
	capsOf := func(msg []byte) ([]bgp.ParameterCapabilityInterface, error) {
		var m *bgp.BGPMessage
		if err := safely(func() error {
			var err error
			m, err = bgp.ParseBGPMessage(msg)
			return err
		}); err != nil {
			return nil, err
		}
		open, ok := m.Body.(*bgp.BGPOpen)
		if !ok {
			return nil, fmt.Errorf("BGP message of type %d, not an OPEN", m.Header.Type)
		}
		var caps []bgp.ParameterCapabilityInterface
		for _, p := range open.OptParams {
			if c, ok := p.(*bgp.OptionParameterCapability); ok {
				caps = append(caps, c.Capability...)
			}
		}
		return caps, nil
	}
	sc, err := capsOf(sent)
	if err != nil {
		return o, false, fmt.Errorf("sent OPEN: %w", err)
	}
	rc, err := capsOf(recv)
	if err != nil {
		return o, false, fmt.Errorf("received OPEN: %w", err)
	}
	addPath := func(caps []bgp.ParameterCapabilityInterface, f bgp.RouteFamily, mode bgp.BGPAddPathMode) bool {
		for _, c := range caps {
			if ap, ok := c.(*bgp.CapAddPath); ok {
				for _, t := range ap.Tuples {
					if t.RouteFamily == f && t.Mode&mode != 0 {
						return true
					}
				}
			}
		}
		return false
	}
	has4 := func(caps []bgp.ParameterCapabilityInterface) bool {
		for _, c := range caps {
			if _, ok := c.(*bgp.CapFourOctetASNumber); ok {
				return true
			}
		}
		return false
	}
	o.addPath4 = addPath(sc, bgp.RF_IPv4_UC, bgp.BGP_ADD_PATH_RECEIVE) && addPath(rc, bgp.RF_IPv4_UC, bgp.BGP_ADD_PATH_SEND)
	o.addPath6 = addPath(sc, bgp.RF_IPv6_UC, bgp.BGP_ADD_PATH_RECEIVE) && addPath(rc, bgp.RF_IPv6_UC, bgp.BGP_ADD_PATH_SEND)
	return o, has4(sc) && has4(rc), nil
}

// safely runs a decoder, turning a panic on malformed input into an error
// (GoBGP's and bio-rd's decoders index without bounds checks in places).
func safely(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed (decoder: %v)", p)
		}
	}()
	return f()
}

// infoString is an Information TLV's text, bounded and printable.
func infoString(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) > 255 {
		b = b[:255]
	}
	return string(bytes.ToValidUTF8(b, []byte("?")))
}
