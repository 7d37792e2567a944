package bgp

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// The four route families the speaker announces.
var (
	rfV4    = bgp.RF_IPv4_UC
	rfV6    = bgp.RF_IPv6_UC
	rfFlow4 = bgp.RF_FS_IPv4_UC
	rfFlow6 = bgp.RF_FS_IPv6_UC
)

// families lists them in a fixed order (ipv4 first, RTBH first).
var families = []bgp.RouteFamily{rfV4, rfV6, rfFlow4, rfFlow6}

// familyFor maps an announce kind and an address family to a route family.
func familyFor(kind, af string) bgp.RouteFamily {
	switch {
	case kind == AnnounceBlackhole && af == FamilyIPv4:
		return rfV4
	case kind == AnnounceBlackhole:
		return rfV6
	case af == FamilyIPv4:
		return rfFlow4
	default:
		return rfFlow6
	}
}

// desiredPath is one path the speaker should hold in its RIB.
//
// The GoBGP objects (nlri, attrs) are built when needed: most paths of a
// large set are unchanged between two Intents and never need them.
type desiredPath struct {
	family bgp.RouteFamily
	dst    netip.Prefix
	src    bool     // FlowSpec rule on the source address
	ids    []uint32 // the targets it is tagged with
	fp     string
	b      *pathBuilder
	nlri   bgp.AddrPrefixInterface
	attrs  []bgp.PathAttributeInterface
}

// built returns the path's NLRI and attributes.
func (d *desiredPath) built() (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	if d.nlri == nil {
		if d.family == rfV4 || d.family == rfV6 {
			d.nlri, d.attrs = d.b.rtbh(d.dst, d.ids)
		} else {
			d.nlri, d.attrs = d.b.flowspec(d.family, d.dst, d.src, d.ids)
		}
	}
	return d.nlri, d.attrs
}

// desiredSet is the whole announcement for an Intent, keyed by
// family + NLRI (pathKey).
type desiredSet struct {
	paths   map[string]*desiredPath
	refused []Refusal
	// targetIDs maps target names to the IDs in their large communities.
	targetIDs map[string]uint32
}

// Refusal is an Intent prefix the speaker refused to announce.
type Refusal struct {
	Target string
	Prefix netip.Prefix
	Reason string
}

// guard is the speaker's own last check before a prefix reaches a peer
// (defence in depth: policy already drops these).
type guard struct {
	protect     []netip.Prefix
	allowBogons bool
}

// refuser returns the guard's check, with the protect list made a prefix
// set once for all the prefixes of an Intent.
func (g guard) refuser() func(p netip.Prefix) (string, bool) {
	return guardCheck{protect: prefixset.NewSet(g.protect), allowBogons: g.allowBogons}.refuse
}

type guardCheck struct {
	protect     *prefixset.Set
	allowBogons bool
}

func (g guardCheck) refuse(p netip.Prefix) (string, bool) {
	switch {
	case !p.IsValid():
		return "invalid prefix", true
	case p != p.Masked():
		return "host bits set", true
	case p.Bits() == 0:
		return "default route", true
	}
	if p.Addr().Is4In6() {
		return "IPv4-mapped IPv6 prefix", true
	}
	if !g.allowBogons {
		if why, ok := prefixset.Bogon(p); ok {
			return "bogon: " + why, true
		}
	}
	if q, ok := g.protect.Overlap(p); ok {
		return "overlaps protected " + q.String(), true
	}
	return "", false
}

// pathBuilder turns an Intent into desired paths.
type pathBuilder struct {
	asn       uint32
	nextHop4  string
	nextHop6  string
	comms     []uint32
	large     []*bgp.LargeCommunity
	flowEC    bgp.ExtendedCommunityInterface
	maxRules  int
	guard     guard
	need      map[bgp.RouteFamily]bool
	fpCache   map[bgp.PathAttributeInterface][]byte
	attrCache map[string]bgp.PathAttributeInterface
}

// targetLarge is the large community that tags a target's routes.
func targetLarge(asn, id uint32) *bgp.LargeCommunity { return bgp.NewLargeCommunity(asn, 666, id) }

// build computes the desired set. It fails (and nothing may change) when
// the FlowSpec rules exceed the budget.
func (b *pathBuilder) build(in *policy.Intent) (*desiredSet, error) {
	ds := &desiredSet{paths: map[string]*desiredPath{}, targetIDs: map[string]uint32{}}
	if in == nil {
		return ds, nil
	}
	seenID := map[uint32]string{}
	for _, t := range in.Targets {
		if other, dup := seenID[t.ID]; dup {
			return nil, fmt.Errorf("targets %q and %q share id %d: their large communities could not be told apart", other, t.Name, t.ID)
		}
		seenID[t.ID] = t.Name
		ds.targetIDs[t.Name] = t.ID
	}
	// Per NLRI, the targets that want it: a prefix in two targets is one
	// path carrying both targets' large communities.
	type wantKey struct {
		family bgp.RouteFamily
		dst    netip.Prefix
		src    bool // FlowSpec rule on the source address
	}
	type want struct {
		wantKey
		ids []uint32
	}
	total := 0
	for _, t := range in.Targets {
		total += len(t.Prefixes)
	}
	wants := make(map[wantKey]*want, total)
	add := func(rf bgp.RouteFamily, p netip.Prefix, src bool, id uint32) {
		k := wantKey{rf, p, src}
		w, ok := wants[k]
		if !ok {
			w = &want{wantKey: k}
			wants[k] = w
		}
		if !slices.Contains(w.ids, id) {
			w.ids = append(w.ids, id)
		}
	}
	refuse := b.guard.refuser()
	for _, t := range in.Targets {
		for _, fam := range []prefixset.Family{prefixset.IPv4, prefixset.IPv6} {
			af := FamilyIPv4
			if fam == prefixset.IPv6 {
				af = FamilyIPv6
			}
			var ok []netip.Prefix
			for _, p := range t.Exact(fam) {
				if why, bad := refuse(p); bad {
					ds.refused = append(ds.refused, Refusal{Target: t.Name, Prefix: p, Reason: why})
					continue
				}
				ok = append(ok, p)
			}
			// RTBH: every Intent prefix exactly, one path each. Aggregating
			// would make a small registry change withdraw and re-announce a
			// covering route; exact paths keep the delta equal to the change.
			if rf := familyFor(AnnounceBlackhole, af); b.need[rf] {
				for _, p := range ok {
					add(rf, p, false, t.ID)
				}
			}
			// FlowSpec: the minimal address cover (rules are scarce on
			// routers), one destination and one source rule per prefix.
			if rf := familyFor(AnnounceFlowSpec, af); b.need[rf] {
				for _, p := range prefixset.Coverage(ok) {
					if p.Bits() == 0 {
						continue // only possible with allow_bogons and a full table
					}
					add(rf, p, false, t.ID)
					add(rf, p, true, t.ID)
				}
			}
		}
	}
	rules := 0
	for _, w := range wants {
		if w.family == rfFlow4 || w.family == rfFlow6 {
			rules++
		}
	}
	if rules > b.maxRules {
		return nil, fmt.Errorf("flowspec: %d rules needed, above flowspec.max_rules %d: nothing was changed (raise max_rules, or give FlowSpec neighbors fewer targets)", rules, b.maxRules)
	}
	ds.paths = make(map[string]*desiredPath, len(wants))
	fps := map[string]string{}
	prefixes := map[bgp.RouteFamily]string{}
	for _, rf := range families {
		prefixes[rf] = rf.String() + "|"
	}
	for _, w := range wants {
		slices.Sort(w.ids)
		dp := &desiredPath{family: w.family, dst: w.dst, src: w.src, ids: w.ids, b: b}
		// A path's attributes, hence its fingerprint, depend only on its
		// family and targets (the next hop is per family).
		fk := strconv.Itoa(int(w.family)) + idsKey(w.ids)
		fp, ok := fps[fk]
		if !ok {
			_, attrs := dp.built()
			var err error
			if fp, err = fingerprint(attrs, b.fpCache); err != nil {
				return nil, err
			}
			fps[fk] = fp
		}
		dp.fp = fp
		var key string
		if w.family == rfV4 || w.family == rfV6 {
			key = prefixes[w.family] + w.dst.String() // as GoBGP prints the NLRI
		} else {
			nlri, _ := dp.built()
			key = pathKey(w.family, nlri)
		}
		ds.paths[key] = dp
	}
	return ds, nil
}

// intern returns one attribute object per distinct value, so that their
// serialisation is computed once for thousands of paths.
func (b *pathBuilder) intern(key string, mk func() bgp.PathAttributeInterface) bgp.PathAttributeInterface {
	if a, ok := b.attrCache[key]; ok {
		return a
	}
	a := mk()
	b.attrCache[key] = a
	return a
}

func (b *pathBuilder) largeFor(ids []uint32, withConfigured bool) bgp.PathAttributeInterface {
	key := "large" + idsKey(ids)
	if withConfigured {
		key += "+"
	}
	return b.intern(key, func() bgp.PathAttributeInterface {
		var ls []*bgp.LargeCommunity
		if withConfigured {
			ls = append(ls, b.large...)
		}
		for _, id := range ids {
			ls = append(ls, targetLarge(b.asn, id))
		}
		sortLarge(ls)
		ls = slices.CompactFunc(ls, func(a, b *bgp.LargeCommunity) bool { return *a == *b })
		return bgp.NewPathAttributeLargeCommunities(ls)
	})
}

// idsKey is a cheap map key for a list of target IDs.
func idsKey(ids []uint32) string {
	b := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		b = strconv.AppendUint(append(b, ','), uint64(id), 10)
	}
	return string(b)
}

// rtbh builds an RTBH path (RFC 5635, RFC 7999).
func (b *pathBuilder) rtbh(p netip.Prefix, ids []uint32) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	origin := b.intern("origin", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP) })
	comms := b.intern("rtbh-comms", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeCommunities(b.comms) })
	large := b.largeFor(ids, true)
	if p.Addr().Is4() {
		nlri := bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		nh := b.intern("nh4", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeNextHop(b.nextHop4) })
		return nlri, []bgp.PathAttributeInterface{origin, nh, comms, large}
	}
	nlri := bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
	// The IPv6 next hop lives in MP_REACH_NLRI, which must carry the NLRI.
	mp := bgp.NewPathAttributeMpReachNLRI(b.nextHop6, []bgp.AddrPrefixInterface{nlri})
	return nlri, []bgp.PathAttributeInterface{origin, mp, comms, large}
}

// flowspec builds a FlowSpec rule (RFC 8955 / RFC 8956) matching p as
// destination or source, with the configured action. It carries NO_EXPORT
// too: like RTBH routes, rules are for the operator's own network.
func (b *pathBuilder) flowspec(rf bgp.RouteFamily, p netip.Prefix, src bool, ids []uint32) (bgp.AddrPrefixInterface, []bgp.PathAttributeInterface) {
	var comp bgp.FlowSpecComponentInterface
	var nlri bgp.AddrPrefixInterface
	nh := "0.0.0.0"
	if rf == rfFlow4 {
		pfx := bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		if src {
			comp = bgp.NewFlowSpecSourcePrefix(pfx)
		} else {
			comp = bgp.NewFlowSpecDestinationPrefix(pfx)
		}
		nlri = bgp.NewFlowSpecIPv4Unicast([]bgp.FlowSpecComponentInterface{comp})
	} else {
		pfx := bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
		if src {
			comp = bgp.NewFlowSpecSourcePrefix6(pfx, 0)
		} else {
			comp = bgp.NewFlowSpecDestinationPrefix6(pfx, 0)
		}
		nlri, nh = bgp.NewFlowSpecIPv6Unicast([]bgp.FlowSpecComponentInterface{comp}), "::"
	}
	origin := b.intern("origin", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP) })
	ext := b.intern("flow-ext", func() bgp.PathAttributeInterface {
		return bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{b.flowEC})
	})
	comms := b.intern("flow-comms", func() bgp.PathAttributeInterface {
		return bgp.NewPathAttributeCommunities([]uint32{uint32(bgp.COMMUNITY_NO_EXPORT)})
	})
	// GoBGP requires a next hop even for FlowSpec; it sends a zero-length one.
	mp := bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri})
	return nlri, []bgp.PathAttributeInterface{origin, mp, comms, ext, b.largeFor(ids, false)}
}

func sortLarge(ls []*bgp.LargeCommunity) {
	slices.SortFunc(ls, func(a, b *bgp.LargeCommunity) int {
		return cmp.Or(cmp.Compare(a.ASN, b.ASN), cmp.Compare(a.LocalData1, b.LocalData1), cmp.Compare(a.LocalData2, b.LocalData2))
	})
}

// pathKey identifies a path in the RIB: route family + NLRI.
func pathKey(rf bgp.RouteFamily, nlri bgp.AddrPrefixInterface) string {
	return rf.String() + "|" + nlri.String()
}

// fingerprint identifies a path's attributes: the next hop, and every
// other attribute's wire form, in type order. MP_REACH_NLRI carries the
// NLRI itself, so only its next hop counts. cache (may be nil) holds the
// wire form of attributes common to many paths.
func fingerprint(attrs []bgp.PathAttributeInterface, cache map[bgp.PathAttributeInterface][]byte) (string, error) {
	parts := make([]fpPart, 0, len(attrs))
	for _, a := range attrs {
		switch x := a.(type) {
		case *bgp.PathAttributeNextHop:
			parts = append(parts, fpPart{typ: uint8(bgp.BGP_ATTR_TYPE_NEXT_HOP), nh: nhString(x.Value)})
		case *bgp.PathAttributeMpReachNLRI:
			parts = append(parts, fpPart{typ: uint8(bgp.BGP_ATTR_TYPE_MP_REACH_NLRI), nh: nhString(x.Nexthop)})
		default:
			raw, ok := cache[a]
			if !ok {
				var err error
				if raw, err = a.Serialize(); err != nil {
					return "", fmt.Errorf("attribute %s: %w", a.GetType(), err)
				}
				if cache != nil {
					cache[a] = raw
				}
			}
			parts = append(parts, fpPart{typ: uint8(a.GetType()), raw: raw})
		}
	}
	return fpString(parts), nil
}

// fingerprintWire is fingerprint for attributes in wire form (a path
// listed from the RIB in binary).
func fingerprintWire(attrs [][]byte) (string, error) {
	parts := make([]fpPart, 0, len(attrs))
	for _, raw := range attrs {
		if len(raw) < 3 {
			return "", fmt.Errorf("attribute of %d bytes", len(raw))
		}
		flags, typ := raw[0], raw[1]
		hdr := 3
		if flags&0x10 != 0 { // extended length
			hdr = 4
		}
		if len(raw) < hdr {
			return "", fmt.Errorf("attribute %d: short header", typ)
		}
		val := raw[hdr:]
		switch bgp.BGPAttrType(typ) {
		case bgp.BGP_ATTR_TYPE_NEXT_HOP:
			if len(val) != 4 {
				return "", fmt.Errorf("NEXT_HOP of %d bytes", len(val))
			}
			parts = append(parts, fpPart{typ: typ, nh: nhString(net.IP(val))})
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI:
			// AFI (2), SAFI (1), next hop length (1), next hop, ...
			if len(val) < 4 || len(val) < 4+int(val[3]) {
				return "", fmt.Errorf("MP_REACH_NLRI of %d bytes", len(val))
			}
			var nh net.IP
			switch n := int(val[3]); {
			case n == 4 || n == 16:
				nh = net.IP(val[4 : 4+n])
			case n == 32: // global + link-local: the global one counts
				nh = net.IP(val[4:20])
			}
			parts = append(parts, fpPart{typ: typ, nh: nhString(nh)})
		default:
			parts = append(parts, fpPart{typ: typ, raw: raw})
		}
	}
	return fpString(parts), nil
}

type fpPart struct {
	typ uint8
	nh  string
	raw []byte
}

// nhString: FlowSpec has no next hop (built with 0.0.0.0 or ::, stored
// as nothing), which is the empty string.
func nhString(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

func fpString(parts []fpPart) string {
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].typ < parts[j].typ })
	var buf bytes.Buffer
	for _, p := range parts {
		buf.WriteByte(p.typ)
		if p.raw != nil {
			buf.Write(p.raw)
		} else {
			buf.WriteString("nh=" + p.nh + ";")
		}
	}
	return buf.String()
}

// withMarker returns the path's attributes with the withdrawal marker
// added to its large communities (see policy.go).
func (d *desiredPath) withMarker(asn uint32) []bgp.PathAttributeInterface {
	_, attrs := d.built()
	out := make([]bgp.PathAttributeInterface, 0, len(attrs))
	for _, a := range attrs {
		if l, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
			vs := append(slices.Clone(l.Values), bgp.NewLargeCommunity(asn, withdrawMarkerLocal1, 0))
			sortLarge(vs)
			a = bgp.NewPathAttributeLargeCommunities(vs)
		}
		out = append(out, a)
	}
	return out
}
