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

	api "github.com/osrg/gobgp/v3/api"
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

// pathKey identifies a path the speaker announces: its route family and
// NLRI. Every NLRI the speaker builds is one prefix: an RTBH route, or a
// FlowSpec rule on the destination or (src) the source address. It holds
// no pointers, so a set of a million of them costs the garbage collector
// nothing to scan.
type pathKey struct {
	family bgp.RouteFamily
	addr   [16]byte // IPv4 in the first 4 bytes
	bits   uint8
	src    bool
}

func newPathKey(rf bgp.RouteFamily, p netip.Prefix, src bool) pathKey {
	k := pathKey{family: rf, bits: uint8(p.Bits()), src: src}
	if p.Addr().Is4() {
		a := p.Addr().As4()
		copy(k.addr[:], a[:])
	} else {
		k.addr = p.Addr().As16()
	}
	return k
}

func (k pathKey) prefix() netip.Prefix {
	if k.family == rfV4 || k.family == rfFlow4 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte(k.addr[:4])), int(k.bits))
	}
	return netip.PrefixFrom(netip.AddrFrom16(k.addr), int(k.bits))
}

// String is the path as GoBGP prints it: family|NLRI.
func (k pathKey) String() string {
	nlri, _ := k.nlri()
	return k.family.String() + "|" + nlri.String()
}

// nlri builds the GoBGP NLRI, and the MP_REACH_NLRI next hop of its
// family ("" for IPv4 unicast, which has NEXT_HOP).
func (k pathKey) nlri() (bgp.AddrPrefixInterface, string) {
	p := k.prefix()
	switch k.family {
	case rfV4:
		return bgp.NewIPAddrPrefix(k.bits, p.Addr().String()), ""
	case rfV6:
		return bgp.NewIPv6AddrPrefix(k.bits, p.Addr().String()), ""
	case rfFlow4:
		pfx := bgp.NewIPAddrPrefix(k.bits, p.Addr().String())
		var comp bgp.FlowSpecComponentInterface = bgp.NewFlowSpecDestinationPrefix(pfx)
		if k.src {
			comp = bgp.NewFlowSpecSourcePrefix(pfx)
		}
		return bgp.NewFlowSpecIPv4Unicast([]bgp.FlowSpecComponentInterface{comp}), "0.0.0.0"
	default:
		pfx := bgp.NewIPv6AddrPrefix(k.bits, p.Addr().String())
		var comp bgp.FlowSpecComponentInterface = bgp.NewFlowSpecDestinationPrefix6(pfx, 0)
		if k.src {
			comp = bgp.NewFlowSpecSourcePrefix6(pfx, 0)
		}
		return bgp.NewFlowSpecIPv6Unicast([]bgp.FlowSpecComponentInterface{comp}), "::"
	}
}

// pathClass is what paths of one family tagged with the same targets
// share: their attributes (all but the NLRI), built and fingerprinted
// once for all of them.
type pathClass struct {
	family bgp.RouteFamily
	ids    []uint32 // the targets, sorted
	fp     string
	// attrs are the attributes, MP_REACH_NLRI left out (it carries the
	// NLRI: see pathClass.path); wire is their wire form.
	attrs []bgp.PathAttributeInterface
	wire  [][]byte
}

// desiredSet is the whole announcement for an Intent: each path and the
// class of its attributes, sorted by key. Sorted slices make the diff of
// two sets one sequential pass (a million map lookups cost more than the
// rest of a 1 % change together) and take 28 bytes a path.
type desiredSet struct {
	paths   []desiredEntry
	classes []*pathClass
	refused []Refusal
	// targetIDs maps target names to the IDs in their large communities.
	targetIDs map[string]uint32
}

// desiredEntry is one path: its key and its class (index in classes).
type desiredEntry struct {
	key   pathKey
	class uint32
}

// compareKeys orders paths by family (in families' order), then prefix.
func compareKeys(a, b pathKey) int {
	if a.family != b.family {
		return familyRank(a.family) - familyRank(b.family)
	}
	return cmp.Or(bytes.Compare(a.addr[:], b.addr[:]), cmp.Compare(a.bits, b.bits), cmpBool(a.src, b.src))
}

func familyRank(rf bgp.RouteFamily) int {
	switch rf {
	case rfV4:
		return 0
	case rfV6:
		return 1
	case rfFlow4:
		return 2
	default:
		return 3
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	default:
		return 1
	}
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
	ds := &desiredSet{targetIDs: map[string]uint32{}}
	if in == nil {
		return ds, nil
	}
	seenID := map[uint32]string{}
	total := 0
	for _, t := range in.Targets {
		if other, dup := seenID[t.ID]; dup {
			return nil, fmt.Errorf("targets %q and %q share id %d: their large communities could not be told apart", other, t.Name, t.ID)
		}
		seenID[t.ID] = t.Name
		ds.targetIDs[t.Name] = t.ID
		total += len(t.Prefixes)
	}
	ds.paths = make([]desiredEntry, 0, total)
	// Classes are found by family and targets: a path of one target gets
	// the class of (family, target). A prefix in two targets is one path
	// carrying both targets' large communities: its class is the union,
	// memoised per (class, target).
	byIDs := map[string]uint32{}
	type union struct{ class, id uint32 }
	unions := map[union]uint32{}
	single := map[union]uint32{} // (family, id) -> class
	classFor := func(rf bgp.RouteFamily, ids []uint32) uint32 {
		k := strconv.Itoa(int(rf)) + idsKey(ids)
		if c, ok := byIDs[k]; ok {
			return c
		}
		c := uint32(len(ds.classes))
		ds.classes = append(ds.classes, &pathClass{family: rf, ids: ids})
		byIDs[k] = c
		return c
	}
	classOf := func(rf bgp.RouteFamily, id uint32) uint32 {
		one, ok := single[union{uint32(rf), id}]
		if !ok {
			one = classFor(rf, []uint32{id})
			single[union{uint32(rf), id}] = one
		}
		return one
	}
	refuse := b.guard.refuser()
	rtbh4, rtbh6 := b.need[rfV4], b.need[rfV6]
	flow4, flow6 := b.need[rfFlow4], b.need[rfFlow6]
	for _, t := range in.Targets {
		// One pass over the target's prefixes: RTBH paths as they come,
		// FlowSpec's prefixes per family for their cover.
		var c4, c6 uint32
		if rtbh4 {
			c4 = classOf(rfV4, t.ID)
		}
		if rtbh6 {
			c6 = classOf(rfV6, t.ID)
		}
		var cover4, cover6 []netip.Prefix
		for i := range t.Prefixes {
			p := t.Prefixes[i].Prefix
			if why, bad := refuse(p); bad {
				ds.refused = append(ds.refused, Refusal{Target: t.Name, Prefix: p, Reason: why})
				continue
			}
			// RTBH: every Intent prefix exactly, one path each. Aggregating
			// would make a small registry change withdraw and re-announce a
			// covering route; exact paths keep the delta equal to the change.
			if p.Addr().Is4() {
				if rtbh4 {
					ds.paths = append(ds.paths, desiredEntry{key: newPathKey(rfV4, p, false), class: c4})
				}
				if flow4 {
					cover4 = append(cover4, p)
				}
			} else {
				if rtbh6 {
					ds.paths = append(ds.paths, desiredEntry{key: newPathKey(rfV6, p, false), class: c6})
				}
				if flow6 {
					cover6 = append(cover6, p)
				}
			}
		}
		// FlowSpec: the minimal address cover (rules are scarce on
		// routers), one destination and one source rule per prefix.
		for _, fc := range []struct {
			rf bgp.RouteFamily
			ps []netip.Prefix
		}{{rfFlow4, cover4}, {rfFlow6, cover6}} {
			if len(fc.ps) == 0 {
				continue
			}
			c := classOf(fc.rf, t.ID)
			for _, p := range prefixset.Coverage(fc.ps) {
				if p.Bits() == 0 {
					continue // only possible with allow_bogons and a full table
				}
				ds.paths = append(ds.paths, desiredEntry{key: newPathKey(fc.rf, p, false), class: c},
					desiredEntry{key: newPathKey(fc.rf, p, true), class: c})
			}
		}
	}
	// Sorted by key (Intents are mostly sorted already), one entry per
	// key: the class of a key in several targets is their union.
	slices.SortFunc(ds.paths, func(a, b desiredEntry) int { return compareKeys(a.key, b.key) })
	out := ds.paths[:0]
	for _, e := range ds.paths {
		if n := len(out); n > 0 && out[n-1].key == e.key {
			last := &out[n-1]
			id := ds.classes[e.class].ids[0]
			if slices.Contains(ds.classes[last.class].ids, id) {
				continue
			}
			u, ok := unions[union{last.class, id}]
			if !ok {
				ids := append(slices.Clone(ds.classes[last.class].ids), id)
				slices.Sort(ids)
				u = classFor(e.key.family, ids)
				unions[union{last.class, id}] = u
			}
			last.class = u
			continue
		}
		out = append(out, e)
	}
	ds.paths = slices.Clip(out)
	flowRules := 0
	for _, e := range ds.paths {
		if e.key.family == rfFlow4 || e.key.family == rfFlow6 {
			flowRules++
		}
	}
	if flowRules > b.maxRules {
		return nil, fmt.Errorf("flowspec: %d rules needed, above flowspec.max_rules %d: nothing was changed (raise max_rules, or give FlowSpec neighbors fewer targets)", flowRules, b.maxRules)
	}
	for _, c := range ds.classes {
		if err := b.fill(c); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// fill builds a class's attributes, their wire form and fingerprint.
func (b *pathBuilder) fill(c *pathClass) error {
	if c.family == rfV4 || c.family == rfV6 {
		c.attrs = b.rtbh(c.family, c.ids)
	} else {
		c.attrs = b.flowspec(c.ids)
	}
	c.wire = make([][]byte, len(c.attrs))
	for i, a := range c.attrs {
		raw, ok := b.fpCache[a]
		if !ok {
			var err error
			if raw, err = a.Serialize(); err != nil {
				return fmt.Errorf("attribute %s: %w", a.GetType(), err)
			}
			b.fpCache[a] = raw
		}
		c.wire[i] = raw
	}
	// The fingerprint of a whole path (MP_REACH_NLRI counts by its next
	// hop only), as fingerprintWire reads it back from the RIB.
	attrs := c.attrs
	if c.family != rfV4 {
		nlri, nh := pathKey{family: c.family}.nlri()
		if c.family == rfV6 {
			nh = b.nextHop6
		}
		attrs = append(slices.Clone(attrs), bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	fp, err := fingerprint(attrs, b.fpCache)
	if err != nil {
		return err
	}
	c.fp = fp
	return nil
}

// withMarker returns the class with the withdrawal marker added to its
// large communities (see policy.go).
func (b *pathBuilder) withMarker(c *pathClass) (*pathClass, error) {
	m := &pathClass{family: c.family, ids: c.ids, attrs: make([]bgp.PathAttributeInterface, 0, len(c.attrs))}
	m.wire = make([][]byte, 0, len(c.attrs))
	for _, a := range c.attrs {
		if l, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
			vs := append(slices.Clone(l.Values), bgp.NewLargeCommunity(b.asn, withdrawMarkerLocal1, 0))
			sortLarge(vs)
			a = bgp.NewPathAttributeLargeCommunities(vs)
		}
		raw, err := a.Serialize()
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.GetType(), err)
		}
		m.attrs = append(m.attrs, a)
		m.wire = append(m.wire, raw)
	}
	return m, nil
}

// apiPath is the path with key k and this class's attributes, in wire
// form: GoBGP decodes that directly, where the protobuf form would cost
// an encoding here and a decoding there for every path.
func (c *pathClass) apiPath(k pathKey, nextHop6 string, withdraw bool) (*api.Path, error) {
	p := &api.Path{Family: apiFamilies[k.family], IsWithdraw: withdraw, PattrsBinary: c.wire}
	if k.family == rfV4 {
		// An IPv4 prefix on the wire: its length, then its significant bytes.
		p.NlriBinary = append([]byte{k.bits}, k.addr[:(int(k.bits)+7)/8]...)
		return p, nil
	}
	nlri, nh := k.nlri()
	if k.family == rfV6 {
		nh = nextHop6
	}
	raw, err := nlri.Serialize()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	p.NlriBinary = raw
	// The IPv6 next hop (and FlowSpec's required empty one) lives in
	// MP_REACH_NLRI, which must carry the NLRI: one per path.
	mp, err := bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	p.PattrsBinary = append(slices.Clip(c.wire), mp)
	return p, nil
}

// apiFamilies are the API's family values, shared by every path.
var apiFamilies = func() map[bgp.RouteFamily]*api.Family {
	m := map[bgp.RouteFamily]*api.Family{}
	for _, rf := range families {
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		m[rf] = &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)}
	}
	return m
}()

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

// rtbh builds the attributes of RTBH paths (RFC 5635, RFC 7999) for
// targets ids; the IPv6 next hop goes in MP_REACH_NLRI (see apiPath).
func (b *pathBuilder) rtbh(rf bgp.RouteFamily, ids []uint32) []bgp.PathAttributeInterface {
	origin := b.intern("origin", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP) })
	comms := b.intern("rtbh-comms", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeCommunities(b.comms) })
	large := b.largeFor(ids, true)
	if rf == rfV4 {
		nh := b.intern("nh4", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeNextHop(b.nextHop4) })
		return []bgp.PathAttributeInterface{origin, nh, comms, large}
	}
	return []bgp.PathAttributeInterface{origin, comms, large}
}

// flowspec builds the attributes of FlowSpec rules (RFC 8955 / RFC 8956)
// for targets ids, with the configured action; GoBGP requires a next
// hop even for FlowSpec (in MP_REACH_NLRI, see apiPath) and sends a
// zero-length one. They carry NO_EXPORT too: like RTBH routes, rules are
// for the operator's own network.
func (b *pathBuilder) flowspec(ids []uint32) []bgp.PathAttributeInterface {
	origin := b.intern("origin", func() bgp.PathAttributeInterface { return bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP) })
	ext := b.intern("flow-ext", func() bgp.PathAttributeInterface {
		return bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{b.flowEC})
	})
	comms := b.intern("flow-comms", func() bgp.PathAttributeInterface {
		return bgp.NewPathAttributeCommunities([]uint32{uint32(bgp.COMMUNITY_NO_EXPORT)})
	})
	return []bgp.PathAttributeInterface{origin, comms, ext, b.largeFor(ids, false)}
}

func sortLarge(ls []*bgp.LargeCommunity) {
	slices.SortFunc(ls, func(a, b *bgp.LargeCommunity) int {
		return cmp.Or(cmp.Compare(a.ASN, b.ASN), cmp.Compare(a.LocalData1, b.LocalData1), cmp.Compare(a.LocalData2, b.LocalData2))
	})
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
