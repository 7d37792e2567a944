package tables

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"sort"
	"time"
)

// route is one (prefix, origin) pair of a table with what the table says
// about it, in 40 bytes: no AS paths, no attributes. A 1M-prefix table
// with a few origins per prefix is a few tens of megabytes, whatever the
// number of peers or the size of the file.
type route struct {
	hi, lo uint64 // the address: IPv4 in the top 32 bits of hi
	origin uint32
	// peers is how many peers carried the route (bgp.tools: its hits); in
	// the builder's per-peer sightings, the peer's id.
	peers       uint32
	first, last uint32 // unix seconds; 0 when the table has no times
	name        uint32 // 1 + index into Index.names (ip2asn); 0 for none
	// gen is the dump a RIB route came from (a TABLE_DUMP_V2 stream may
	// hold several dumps, each starting with its peer table): peer counts
	// of one dump add up (a prefix's unicast and ADD-PATH records list
	// different peers), those of different dumps do not.
	gen  uint16
	bits uint8
	v6   bool
}

func routeOf(p netip.Prefix) route {
	p = p.Masked()
	r := route{bits: uint8(p.Bits())}
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		r.hi = uint64(binary.BigEndian.Uint32(b[:])) << 32
		return r
	}
	b := a.As16()
	r.hi, r.lo, r.v6 = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), true
	return r
}

func (r *route) prefix() netip.Prefix {
	if !r.v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(r.hi>>32))
		return netip.PrefixFrom(netip.AddrFrom4(b), int(r.bits))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.hi)
	binary.BigEndian.PutUint64(b[8:], r.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(r.bits))
}

// compareAddr orders IPv4 before IPv6, then by address.
func compareAddr(a, b *route) int {
	if a.v6 != b.v6 {
		if a.v6 {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(a.hi, b.hi), cmp.Compare(a.lo, b.lo))
}

// compareRoute orders by prefix (address, then length), then origin.
func compareRoute(a, b *route) int {
	return cmp.Or(compareAddr(a, b), cmp.Compare(a.bits, b.bits), cmp.Compare(a.origin, b.origin))
}

// minTime and maxTime combine times where 0 means unknown.
func minTime(a, b uint32) uint32 {
	if a == 0 || b != 0 && b < a {
		return b
	}
	return a
}

func maxTime(a, b uint32) uint32 { return max(a, b) }

// store holds routes in fixed-size chunks: it grows without ever copying
// what it holds (a growing slice would briefly need its old and its new
// array), and sorts in place.
type store struct {
	chunks [][]route
	n      int
}

const (
	chunkShift = 15 // 32768 routes, 1.25 MiB per chunk
	chunkSize  = 1 << chunkShift
	chunkMask  = chunkSize - 1
)

func (s *store) add(r route) {
	c := s.n >> chunkShift
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, make([]route, 0, chunkSize))
	}
	s.chunks[c] = append(s.chunks[c], r)
	s.n++
}

func (s *store) at(i int) *route { return &s.chunks[i>>chunkShift][i&chunkMask] }

// truncate keeps the first n routes and releases the chunks after them.
func (s *store) truncate(n int) {
	keep := (n + chunkMask) >> chunkShift
	for i := keep; i < len(s.chunks); i++ {
		s.chunks[i] = nil
	}
	s.chunks = s.chunks[:keep]
	if keep > 0 {
		s.chunks[keep-1] = s.chunks[keep-1][:n-(keep-1)<<chunkShift]
	}
	s.n = n
}

// sortBy sorts in place (sort.Sort over the chunks: no second copy).
func (s *store) sortBy(less func(a, b *route) int) {
	sort.Sort(storeSort{s, less})
}

type storeSort struct {
	s   *store
	cmp func(a, b *route) int
}

func (x storeSort) Len() int           { return x.s.n }
func (x storeSort) Less(i, j int) bool { return x.cmp(x.s.at(i), x.s.at(j)) < 0 }
func (x storeSort) Swap(i, j int)      { a, b := x.s.at(i), x.s.at(j); *a, *b = *b, *a }

// Stats says what a scan read.
type Stats struct {
	// Records is the number of MRT records or lines read.
	Records int64
	// RIBRecords and Messages count MRT RIB records (TABLE_DUMP and
	// TABLE_DUMP_V2) and BGP4MP UPDATE messages.
	RIBRecords, Messages int64
	// Routes is the number of distinct (prefix, origin) pairs indexed.
	Routes int
	// Peers is the number of peers whose routes were read (MRT).
	Peers int
	// NoOrigin counts routes without a single origin: the AS path ends in
	// an AS_SET (or a confederation segment) or is empty; pfx2as AS sets.
	NoOrigin int64
	// Skipped counts records that carry no unicast routes (BGP state
	// changes, keepalives, multicast RIBs) and unrouted ranges (ASN 0).
	Skipped int64
	// Bad counts records or lines that could not be read; the first one's
	// error is what the scan reports.
	Bad int64
	// First and Last are the earliest and latest times in the data (zero
	// when it has none).
	First, Last time.Time
}

// Index is a scanned table: routes sorted by prefix, and by origin.
type Index struct {
	routes   store
	byOrigin []uint32 // route positions, ordered by origin then prefix
	names    []string
	named    []nameASN // distinct (organisation name, ASN) pairs
	Stats    Stats
}

type nameASN struct{ name, asn uint32 }

// builder collects routes while a table is scanned.
type builder struct {
	routes store
	// sightings are per-peer routes (peers = the peer's id) of formats
	// that list a prefix once per peer (TABLE_DUMP, BGP4MP): compacted to
	// one per (prefix, origin, peer) as they grow, counted at the end.
	sightings store
	compactAt int
	routesAt  int    // merge the routes when they reach this many
	gen       uint16 // the current dump (MRT: peer tables read)
	peerIDs   map[string]uint32
	nameIDs   map[string]uint32
	names     []string
	stats     Stats
}

func newBuilder() *builder {
	return &builder{compactAt: 1 << 20, routesAt: 1 << 21, peerIDs: map[string]uint32{}, nameIDs: map[string]uint32{}}
}

// add records a route whose peer count is known.
func (b *builder) add(r route) {
	r.gen = b.gen
	b.routes.add(r)
	if b.routes.n >= b.routesAt {
		// The same routes again (dump after dump in one stream): merge
		// them so that memory follows the table, not the file.
		b.mergeRoutes(false)
		if b.routes.n > b.routesAt/2 {
			b.routesAt *= 2
		}
	}
}

// mergeRoutes merges the entries of each (prefix, origin): peer counts of
// one dump add up, the count of a route is the largest of its dumps'
// (final), and before the end the current dump's partial count is kept
// apart from the earlier dumps' (whose records are all read).
func (b *builder) mergeRoutes(final bool) {
	rs := &b.routes
	if rs.n == 0 {
		return
	}
	rs.sortBy(func(a, b *route) int { return cmp.Or(compareRoute(a, b), cmp.Compare(a.gen, b.gen)) })
	w := 0
	for i := 0; i < rs.n; {
		g := *rs.at(i) // the group's route, with first/last/name over all
		var older, cur uint32
		hasOlder, hasCur := false, false
		var genSum uint32
		j := i
		for ; j < rs.n && compareRoute(rs.at(j), &g) == 0; j++ {
			r := rs.at(j)
			if j == i || r.gen != rs.at(j-1).gen {
				genSum = 0
			}
			genSum += r.peers
			if r.gen == b.gen && !final {
				cur, hasCur = genSum, true
			} else {
				older, hasOlder = max(older, genSum), true
			}
			g.first, g.last = minTime(g.first, r.first), maxTime(g.last, r.last)
			if g.name == 0 {
				g.name = r.name
			}
		}
		if hasOlder {
			o := g
			o.peers, o.gen = older, b.gen-1
			if final {
				o.gen = b.gen
			}
			*rs.at(w) = o
			w++
		}
		if hasCur {
			c := g
			c.peers, c.gen = cur, b.gen
			*rs.at(w) = c
			w++
		}
		i = j
	}
	rs.truncate(w)
}

// peer returns the id of a peer (its address and AS, as bytes).
func (b *builder) peer(key []byte) uint32 {
	if id, ok := b.peerIDs[string(key)]; ok {
		return id
	}
	id := uint32(len(b.peerIDs))
	b.peerIDs[string(key)] = id
	return id
}

// sight records that peer carried r at time t.
func (b *builder) sight(r route, peer uint32) {
	r.peers = peer
	b.sightings.add(r)
	if b.sightings.n >= b.compactAt {
		b.compactSightings()
		if b.sightings.n > b.compactAt/2 {
			b.compactAt *= 2
		}
	}
}

func compareSighting(a, b *route) int {
	return cmp.Or(compareRoute(a, b), cmp.Compare(a.peers, b.peers))
}

// compactSightings keeps one sighting per (prefix, origin, peer), with the
// first and last time.
func (b *builder) compactSightings() {
	s := &b.sightings
	if s.n == 0 {
		return
	}
	s.sortBy(compareSighting)
	w := 0
	for i := 1; i < s.n; i++ {
		cur, last := s.at(i), s.at(w)
		if compareSighting(cur, last) == 0 {
			last.first, last.last = minTime(last.first, cur.first), maxTime(last.last, cur.last)
			continue
		}
		w++
		*s.at(w) = *cur
	}
	s.truncate(w + 1)
}

// nameID interns an organisation name.
func (b *builder) nameID(name string) uint32 {
	if name == "" {
		return 0
	}
	if id, ok := b.nameIDs[name]; ok {
		return id
	}
	b.names = append(b.names, name)
	id := uint32(len(b.names))
	b.nameIDs[name] = id
	return id
}

// finish counts the peers of the sightings, merges duplicate routes and
// builds the origin order.
func (b *builder) finish() *Index {
	b.compactSightings()
	s := &b.sightings
	for i := 0; i < s.n; {
		r := *s.at(i)
		r.peers = 0
		j := i
		for ; j < s.n && compareRoute(s.at(j), &r) == 0; j++ {
			q := s.at(j)
			r.peers++
			r.first, r.last = minTime(r.first, q.first), maxTime(r.last, q.last)
		}
		b.routes.add(r)
		i = j
	}
	b.sightings = store{}

	b.mergeRoutes(true)
	rs := &b.routes
	x := &Index{routes: *rs, names: b.names, Stats: b.stats}
	x.Stats.Routes = rs.n
	if len(b.peerIDs) > x.Stats.Peers {
		x.Stats.Peers = len(b.peerIDs)
	}
	// Sort (origin, position) pairs: one compact array, no indirection.
	pairs := make([]uint64, rs.n)
	for i := range pairs {
		pairs[i] = uint64(rs.at(i).origin)<<32 | uint64(i)
	}
	slices.Sort(pairs)
	x.byOrigin = make([]uint32, rs.n)
	for i, p := range pairs {
		x.byOrigin[i] = uint32(p)
	}
	if len(b.names) > 0 {
		seen := map[nameASN]bool{}
		for i := 0; i < rs.n; i++ {
			r := rs.at(i)
			if k := (nameASN{r.name, r.origin}); r.name != 0 && !seen[k] {
				seen[k] = true
				x.named = append(x.named, k)
			}
		}
		slices.SortFunc(x.named, func(a, b nameASN) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.asn, b.asn)) })
	}
	return x
}

// Len is the number of routes.
func (x *Index) Len() int { return x.routes.n }

// originated calls fn for every route originated by asn, in prefix order.
func (x *Index) originated(asn uint32, fn func(*route)) {
	i, _ := slices.BinarySearchFunc(x.byOrigin, asn, func(pos, a uint32) int { return cmp.Compare(x.routes.at(int(pos)).origin, a) })
	for ; i < len(x.byOrigin); i++ {
		r := x.routes.at(int(x.byOrigin[i]))
		if r.origin != asn {
			return
		}
		fn(r)
	}
}

// within calls fn for every route equal to or more specific than p, in
// prefix order.
func (x *Index) within(p netip.Prefix, fn func(*route)) {
	q := routeOf(p)
	// The last address of p.
	end := q
	host := 32
	if q.v6 {
		host = 128
	}
	for b := int(q.bits); b < host; b++ {
		if b < 64 {
			end.hi |= 1 << (63 - b)
		} else {
			end.lo |= 1 << (127 - b)
		}
	}
	if !q.v6 {
		end.hi &^= 1<<32 - 1 // IPv4 lives in the top 32 bits
	}
	i := sort.Search(x.routes.n, func(i int) bool { return compareAddr(x.routes.at(i), &q) >= 0 })
	for ; i < x.routes.n; i++ {
		r := x.routes.at(i)
		if compareAddr(r, &end) > 0 {
			return
		}
		if r.bits >= q.bits {
			fn(r)
		}
	}
}

// name returns a route's organisation name ("" for none).
func (x *Index) name(r *route) string {
	if r.name == 0 || int(r.name) > len(x.names) {
		return ""
	}
	return x.names[r.name-1]
}
