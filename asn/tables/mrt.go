package tables

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"
)

// MaxRecordBytes bounds one MRT record. Real records reach about 100 KB (a
// prefix with its entries from every peer of a collector; bgpdump's 64 KB
// overflow sample is 70 KB); a length beyond this is a damaged file.
const MaxRecordBytes = 16 << 20

// MRT subtypes read here beyond those gobgp names (RFC 6396 §4.2, §4.4).
const (
	td1AFIIPv4 = 1
	td1AFIIPv6 = 2
)

// badRecord is an error in one record whose framing is intact: the record
// is skipped and the scan goes on.
type badRecord struct{ err error }

func (e badRecord) Error() string { return e.err.Error() }
func (e badRecord) Unwrap() error { return e.err }

func recordErr(format string, args ...any) error { return badRecord{fmt.Errorf(format, args...)} }

// mrtScanner reads MRT records: TABLE_DUMP (v1, decoded here per RFC 6396
// §4.2: gobgp has none), TABLE_DUMP_V2 (gobgp's decoder for the peer
// table; RIB entries are walked here, see rib) and BGP4MP / BGP4MP_ET
// (gobgp's BGP message decoder).
type mrtScanner struct {
	b     *builder
	peers int // entries in the TABLE_DUMP_V2 peer index table; -1 before one
	// per-record scratch space, reused
	buf  []byte
	acc  []ribEntry
	peer []byte
}

type ribEntry struct {
	origin, peer, time uint32
}

// scanMRT reads an MRT stream into b. A damaged record whose framing is
// intact is skipped (the first such error is returned at the end, and
// Stats.Bad counts them); a record that runs past the end of the data, or
// a damaged compressed stream, ends the scan: what was read before stays
// in b.
func scanMRT(ctx context.Context, r io.Reader, compression string, b *builder) error {
	cr := &countingReader{r: r}
	s := &mrtScanner{b: b, peers: -1}
	var first error
	var hdr [mrt.MRT_COMMON_HEADER_LEN]byte
	for {
		if b.stats.Records&0x3ff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		off := cr.n
		n, err := io.ReadFull(cr, hdr[:])
		if n == 0 && errors.Is(err, io.EOF) {
			return first
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && cr.err == nil {
				return fmt.Errorf("byte offset %d: record header cut short (%d of %d bytes): the data ends early", off, n, len(hdr))
			}
			return fmt.Errorf("byte offset %d: %w", off, streamError(cr.cause(err), compression))
		}
		var h mrt.MRTHeader
		if err := h.DecodeFromBytes(hdr[:]); err != nil {
			return fmt.Errorf("byte offset %d: %w", off, err)
		}
		if h.Len > MaxRecordBytes {
			return fmt.Errorf("byte offset %d: %s record says it is %d bytes long, more than the %d-byte limit: not MRT data or damaged", off, typeName(h.Type, h.SubType), h.Len, MaxRecordBytes)
		}
		if cap(s.buf) < int(h.Len) {
			s.buf = make([]byte, h.Len)
		}
		body := s.buf[:h.Len]
		if n, err := io.ReadFull(cr, body); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && cr.err == nil {
				return fmt.Errorf("byte offset %d: %s record of %d bytes runs past the end of the data (%d bytes left)", off, typeName(h.Type, h.SubType), h.Len, n)
			}
			return fmt.Errorf("byte offset %d: %w", off+int64(len(hdr))+int64(n), streamError(cr.cause(err), compression))
		}
		b.stats.Records++
		if err := s.record(&h, body); err != nil {
			var bad badRecord
			if !errors.As(err, &bad) {
				return fmt.Errorf("byte offset %d: %s record: %w", off, typeName(h.Type, h.SubType), err)
			}
			b.stats.Bad++
			if first == nil {
				first = fmt.Errorf("byte offset %d: %s record: %w", off, typeName(h.Type, h.SubType), bad.err)
			}
		}
	}
}

func typeName(t mrt.MRTType, sub uint16) string {
	switch t {
	case mrt.TABLE_DUMP:
		return fmt.Sprintf("TABLE_DUMP/%d", sub)
	case mrt.TABLE_DUMPv2:
		names := map[uint16]string{1: "PEER_INDEX_TABLE", 2: "RIB_IPV4_UNICAST", 3: "RIB_IPV4_MULTICAST", 4: "RIB_IPV6_UNICAST",
			5: "RIB_IPV6_MULTICAST", 6: "RIB_GENERIC", 7: "GEO_PEER_TABLE", 8: "RIB_IPV4_UNICAST_ADDPATH", 9: "RIB_IPV4_MULTICAST_ADDPATH",
			10: "RIB_IPV6_UNICAST_ADDPATH", 11: "RIB_IPV6_MULTICAST_ADDPATH", 12: "RIB_GENERIC_ADDPATH"}
		if n, ok := names[sub]; ok {
			return "TABLE_DUMP_V2 " + n
		}
		return fmt.Sprintf("TABLE_DUMP_V2/%d", sub)
	case mrt.BGP4MP, mrt.BGP4MP_ET:
		names := map[uint16]string{0: "STATE_CHANGE", 1: "MESSAGE", 4: "MESSAGE_AS4", 5: "STATE_CHANGE_AS4", 6: "MESSAGE_LOCAL",
			7: "MESSAGE_AS4_LOCAL", 8: "MESSAGE_ADDPATH", 9: "MESSAGE_AS4_ADDPATH", 10: "MESSAGE_LOCAL_ADDPATH", 11: "MESSAGE_AS4_LOCAL_ADDPATH"}
		base := "BGP4MP"
		if t == mrt.BGP4MP_ET {
			base = "BGP4MP_ET"
		}
		if n, ok := names[sub]; ok {
			return base + " " + n
		}
		return fmt.Sprintf("%s/%d", base, sub)
	}
	return fmt.Sprintf("type %d/%d", t, sub)
}

// record reads one record into the builder.
func (s *mrtScanner) record(h *mrt.MRTHeader, body []byte) error {
	switch h.Type {
	case mrt.TABLE_DUMP:
		switch h.SubType {
		case td1AFIIPv4:
			return s.tableDump(h, body, false)
		case td1AFIIPv6:
			return s.tableDump(h, body, true)
		}
	case mrt.TABLE_DUMPv2:
		switch mrt.MRTSubTypeTableDumpv2(h.SubType) {
		case mrt.PEER_INDEX_TABLE:
			return s.peerIndex(h, body)
		case mrt.RIB_IPV4_UNICAST:
			return s.rib(h, body, false, false)
		case mrt.RIB_IPV6_UNICAST:
			return s.rib(h, body, true, false)
		case mrt.RIB_IPV4_UNICAST_ADDPATH:
			return s.rib(h, body, false, true)
		case mrt.RIB_IPV6_UNICAST_ADDPATH:
			return s.rib(h, body, true, true)
		case mrt.RIB_GENERIC, mrt.RIB_GENERIC_ADDPATH:
			return s.ribGeneric(h, body, mrt.MRTSubTypeTableDumpv2(h.SubType) == mrt.RIB_GENERIC_ADDPATH)
		case mrt.RIB_IPV4_MULTICAST, mrt.RIB_IPV6_MULTICAST, mrt.RIB_IPV4_MULTICAST_ADDPATH, mrt.RIB_IPV6_MULTICAST_ADDPATH, mrt.GEO_PEER_TABLE:
			s.b.stats.Skipped++ // no unicast routes
			return nil
		}
	case mrt.BGP4MP, mrt.BGP4MP_ET:
		if h.Type == mrt.BGP4MP_ET {
			// The extended header's microseconds (RFC 6396 §3); gobgp's
			// ParseMRTBody has no BGP4MP_ET.
			if len(body) < 4 {
				return recordErr("extended timestamp cut short")
			}
			body = body[4:]
		}
		switch mrt.MRTSubTypeBGP4MP(h.SubType) {
		case mrt.STATE_CHANGE, mrt.STATE_CHANGE_AS4:
			s.b.stats.Skipped++
			return nil
		case mrt.MESSAGE, mrt.MESSAGE_LOCAL:
			return s.bgp4mp(h, body, false, false)
		case mrt.MESSAGE_AS4, mrt.MESSAGE_AS4_LOCAL:
			return s.bgp4mp(h, body, true, false)
		case mrt.MESSAGE_ADDPATH, mrt.MESSAGE_LOCAL_ADDPATH:
			return s.bgp4mp(h, body, false, true)
		case mrt.MESSAGE_AS4_ADDPATH, mrt.MESSAGE_AS4_LOCAL_ADDPATH:
			return s.bgp4mp(h, body, true, true)
		}
	}
	return recordErr("unsupported MRT record type %d subtype %d (read: TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET)", h.Type, h.SubType)
}

// safely runs a gobgp decoder, turning a panic on malformed input into an
// error: some of its decoders index without bounds checks or type-assert
// the errors of others (gobgp v3.37.0), and a damaged file must not stop
// the daemon.
func safely(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed (decoder: %v)", p)
		}
	}()
	return f()
}

// peerIndex reads the TABLE_DUMP_V2 peer table with gobgp's decoder; only
// its size is needed (entries name peers by index).
func (s *mrtScanner) peerIndex(h *mrt.MRTHeader, body []byte) error {
	var t mrt.PeerIndexTable
	if err := safely(func() error { return t.DecodeFromBytes(body) }); err != nil {
		return recordErr("%v", err)
	}
	s.peers = len(t.Peers)
	s.b.stats.Peers = max(s.b.stats.Peers, s.peers)
	s.b.gen++ // a new dump
	return nil
}

// prefixFrom reads an NLRI-encoded prefix (length in bits, then the
// significant bytes) of a family; bits beyond the length are cleared.
func prefixFrom(b []byte, v6 bool) (netip.Prefix, int, error) {
	if len(b) < 1 {
		return netip.Prefix{}, 0, errors.New("prefix length missing")
	}
	bits, size := int(b[0]), 4
	if v6 {
		size = 16
	}
	if bits > size*8 {
		return netip.Prefix{}, 0, fmt.Errorf("prefix length %d longer than %d", bits, size*8)
	}
	n := (bits + 7) / 8
	if len(b) < 1+n {
		return netip.Prefix{}, 0, fmt.Errorf("prefix of /%d needs %d bytes, %d left", bits, n, len(b)-1)
	}
	var a [16]byte
	copy(a[:], b[1:1+n])
	addr := netip.AddrFrom16(a)
	if !v6 {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.PrefixFrom(addr, bits).Masked(), 1 + n, nil
}

// rib reads a TABLE_DUMP_V2 RIB record (RFC 6396 §4.3.2; with ADD-PATH,
// RFC 8050 §4: a path identifier in each entry). Only the AS path of each
// entry is needed, so the entries are walked here without allocating:
// gobgp's Rib decoder builds every attribute of every entry (a full RIB
// has tens of millions of entries) and indexes truncated ADD-PATH entries
// without bounds checks. A test checks that both read the same origins.
func (s *mrtScanner) rib(h *mrt.MRTHeader, body []byte, v6, addPath bool) error {
	if len(body) < 4 {
		return recordErr("sequence number cut short")
	}
	return s.ribEntries(h, body[4:], v6, addPath)
}

// ribGeneric reads RIB_GENERIC(_ADDPATH) records of IPv4 or IPv6 unicast
// (AFI, SAFI, then the prefix as NLRI); other families carry no unicast
// routes.
func (s *mrtScanner) ribGeneric(h *mrt.MRTHeader, body []byte, addPath bool) error {
	if len(body) < 7 {
		return recordErr("RIB_GENERIC header cut short")
	}
	afi, safi := binary.BigEndian.Uint16(body[4:]), body[6]
	if safi != bgp.SAFI_UNICAST || afi != bgp.AFI_IP && afi != bgp.AFI_IP6 {
		s.b.stats.Skipped++
		return nil
	}
	// RIB_GENERIC_ADDPATH carries the path identifiers in its entries, like
	// the other ADD-PATH RIB subtypes (RFC 8050 §4; gobgp reads it so too).
	return s.ribEntries(h, body[7:], afi == bgp.AFI_IP6, addPath)
}

// ribEntries reads a RIB record from its prefix on: the prefix, then the
// entries (peer index, originated time, [path id], attributes).
func (s *mrtScanner) ribEntries(h *mrt.MRTHeader, b []byte, v6, addPath bool) error {
	p, n, err := prefixFrom(b, v6)
	if err != nil {
		return recordErr("%v", err)
	}
	b = b[n:]
	if len(b) < 2 {
		return recordErr("%s: entry count cut short", p)
	}
	count := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if count > 0 && s.peers < 0 {
		return recordErr("%s: RIB entries before any PEER_INDEX_TABLE", p)
	}
	fixed := 8
	if addPath {
		fixed = 12
	}
	s.b.stats.RIBRecords++
	s.acc = s.acc[:0]
	for e := range count {
		if len(b) < fixed {
			return recordErr("%s: entry %d of %d cut short (%d bytes left)", p, e+1, count, len(b))
		}
		peer := uint32(binary.BigEndian.Uint16(b))
		orig := binary.BigEndian.Uint32(b[2:])
		alen := int(binary.BigEndian.Uint16(b[fixed-2:]))
		b = b[fixed:]
		if int(peer) >= s.peers {
			return recordErr("%s: entry %d: peer index %d, but the peer table has %d peers", p, e+1, peer, s.peers)
		}
		if alen > len(b) {
			return recordErr("%s: entry %d: attributes of %d bytes run past the end of the record (%d bytes left)", p, e+1, alen, len(b))
		}
		origin, ok, err := pathOrigin(b[:alen], true)
		if err != nil {
			return recordErr("%s: entry %d: %v", p, e+1, err)
		}
		b = b[alen:]
		if !ok {
			s.b.stats.NoOrigin++
			continue
		}
		s.acc = append(s.acc, ribEntry{origin: origin, peer: peer, time: orig})
	}
	s.commitRIB(h, p)
	return nil
}

// commitRIB adds the entries of one RIB record: per origin, the number of
// distinct peers (ADD-PATH peers may send several paths), announced since
// the earliest originated time, in the table at the dump time.
func (s *mrtScanner) commitRIB(h *mrt.MRTHeader, p netip.Prefix) {
	slices.SortFunc(s.acc, func(a, b ribEntry) int { return cmp.Or(cmp.Compare(a.origin, b.origin), cmp.Compare(a.peer, b.peer)) })
	s.b.seen(h.Timestamp)
	for i := 0; i < len(s.acc); {
		r := routeOf(p)
		r.origin, r.last = s.acc[i].origin, h.Timestamp
		j := i
		for ; j < len(s.acc) && s.acc[j].origin == r.origin; j++ {
			if j == i || s.acc[j].peer != s.acc[j-1].peer {
				r.peers++
			}
			r.first = minTime(r.first, since(s.acc[j].time, h.Timestamp))
		}
		s.b.add(r)
		i = j
	}
}

// since is an entry's originated time, or the dump time when the entry's
// is missing or after the dump.
func since(orig, dump uint32) uint32 {
	if orig == 0 || orig > dump {
		return dump
	}
	return orig
}

// tableDump reads a TABLE_DUMP (v1) record (RFC 6396 §4.2): view, sequence,
// prefix, length, status, originated time, peer address, peer AS (2
// bytes), attributes (2-byte AS_PATH).
func (s *mrtScanner) tableDump(h *mrt.MRTHeader, b []byte, v6 bool) error {
	asz := 4
	if v6 {
		asz = 16
	}
	if need := 4 + asz + 2 + 4 + asz + 2 + 2; len(b) < need {
		return recordErr("record of %d bytes, a TABLE_DUMP entry needs at least %d", len(b), need)
	}
	bits := int(b[4+asz])
	if bits > asz*8 {
		return recordErr("prefix length %d longer than %d", bits, asz*8)
	}
	var a [16]byte
	copy(a[:], b[4:4+asz])
	addr := netip.AddrFrom16(a)
	if !v6 {
		addr = netip.AddrFrom4([4]byte(a[:4]))
	}
	p := netip.PrefixFrom(addr, bits).Masked()
	o := 4 + asz + 2
	orig := binary.BigEndian.Uint32(b[o:])
	peer := b[o+4 : o+4+asz+2] // address and AS
	alen := int(binary.BigEndian.Uint16(b[o+4+asz+2:]))
	attrs := b[o+4+asz+4:]
	if alen > len(attrs) {
		return recordErr("%s: attributes of %d bytes run past the end of the record (%d bytes left)", p, alen, len(attrs))
	}
	origin, ok, err := pathOrigin(attrs[:alen], false)
	if err != nil {
		return recordErr("%s: %v", p, err)
	}
	s.b.stats.RIBRecords++
	s.b.seen(h.Timestamp)
	if !ok {
		s.b.stats.NoOrigin++
		return nil
	}
	r := routeOf(p)
	r.origin, r.first, r.last = origin, since(orig, h.Timestamp), h.Timestamp
	s.b.sight(r, s.b.peer(peer))
	return nil
}

var addPathOpts = &bgp.MarshallingOption{AddPath: map[bgp.RouteFamily]bgp.BGPAddPathMode{
	bgp.RF_IPv4_UC: bgp.BGP_ADD_PATH_RECEIVE, bgp.RF_IPv6_UC: bgp.BGP_ADD_PATH_RECEIVE}}

// bgp4mp reads a BGP4MP message record (RFC 6396 §4.4; ADD-PATH RFC 8050
// §3): the announced prefixes of an UPDATE with its origin. The message is
// decoded by gobgp, with ADD-PATH path identifiers when the subtype says
// so (gobgp's ParseMRTBody ignores that); the AS path is read from the raw
// attributes with the AS size the subtype gives (gobgp guesses it, wrongly
// for some 2-byte paths that end in an AS_SET).
func (s *mrtScanner) bgp4mp(h *mrt.MRTHeader, b []byte, as4, addPath bool) error {
	asz := 2
	if as4 {
		asz = 4
	}
	if len(b) < 2*asz+4 {
		return recordErr("BGP4MP header cut short")
	}
	peerAS := b[:asz]
	afi := binary.BigEndian.Uint16(b[2*asz+2:])
	b = b[2*asz+4:]
	alen := 4
	switch afi {
	case bgp.AFI_IP:
	case bgp.AFI_IP6:
		alen = 16
	default:
		return recordErr("BGP4MP peer address family %d", afi)
	}
	if len(b) < 2*alen {
		return recordErr("BGP4MP addresses cut short")
	}
	s.peer = append(append(s.peer[:0], b[:alen]...), peerAS...)
	msg := b[2*alen:]
	if len(msg) < bgp.BGP_HEADER_LENGTH {
		return recordErr("BGP message header cut short (%d bytes)", len(msg))
	}
	mlen := int(binary.BigEndian.Uint16(msg[16:]))
	if mlen < bgp.BGP_HEADER_LENGTH || mlen > len(msg) {
		return recordErr("BGP message length %d, record holds %d bytes", mlen, len(msg))
	}
	if msg[18] != bgp.BGP_MSG_UPDATE {
		s.b.stats.Skipped++ // OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH
		return nil
	}
	s.b.stats.Messages++
	var opts []*bgp.MarshallingOption
	if addPath {
		opts = append(opts, addPathOpts)
	}
	var m *bgp.BGPMessage
	err := safely(func() error {
		var err error
		m, err = bgp.ParseBGPMessage(msg[:mlen], opts...)
		return err
	})
	u, _ := bodyOf(m)
	if err != nil {
		// RFC 7606: an attribute error that only discards the attribute
		// or withdraws the routes leaves the message decoded; the prefixes
		// and the path are still what the peer sent.
		var me *bgp.MessageError
		if u == nil || !errors.As(err, &me) || me.ErrorHandling == bgp.ERROR_HANDLING_SESSION_RESET || me.ErrorHandling == bgp.ERROR_HANDLING_AFISAFI_DISABLE {
			return recordErr("BGP UPDATE: %v", err)
		}
	}
	var nlri []netip.Prefix
	for _, p := range u.NLRI {
		nlri = appendPrefix(nlri, p.Prefix, p.Length)
	}
	for _, a := range u.PathAttributes {
		if mp, ok := a.(*bgp.PathAttributeMpReachNLRI); ok && mp.SAFI == bgp.SAFI_UNICAST {
			for _, v := range mp.Value {
				switch p := v.(type) {
				case *bgp.IPAddrPrefix:
					nlri = appendPrefix(nlri, p.Prefix, p.Length)
				case *bgp.IPv6AddrPrefix:
					nlri = appendPrefix(nlri, p.Prefix, p.Length)
				}
			}
		}
	}
	s.b.seen(h.Timestamp)
	if len(nlri) == 0 {
		return nil // withdrawals only
	}
	attrs, err := updateAttributes(msg[bgp.BGP_HEADER_LENGTH:mlen])
	if err != nil {
		return recordErr("BGP UPDATE: %v", err)
	}
	origin, ok, err := pathOrigin(attrs, as4)
	if err != nil {
		return recordErr("BGP UPDATE: %v", err)
	}
	if !ok {
		s.b.stats.NoOrigin += int64(len(nlri))
		return nil
	}
	peer := s.b.peer(s.peer)
	for _, p := range nlri {
		r := routeOf(p)
		r.origin, r.first, r.last = origin, h.Timestamp, h.Timestamp
		s.b.sight(r, peer)
	}
	return nil
}

func bodyOf(m *bgp.BGPMessage) (*bgp.BGPUpdate, bool) {
	if m == nil {
		return nil, false
	}
	u, ok := m.Body.(*bgp.BGPUpdate)
	return u, ok
}

func appendPrefix(out []netip.Prefix, ip []byte, bits uint8) []netip.Prefix {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return out
	}
	a = a.Unmap()
	if int(bits) > a.BitLen() {
		return out
	}
	return append(out, netip.PrefixFrom(a, int(bits)).Masked())
}

// updateAttributes returns the path attribute bytes of an UPDATE body.
func updateAttributes(u []byte) ([]byte, error) {
	if len(u) < 2 {
		return nil, errors.New("withdrawn routes length cut short")
	}
	w := int(binary.BigEndian.Uint16(u))
	if len(u) < 2+w+2 {
		return nil, fmt.Errorf("withdrawn routes of %d bytes run past the message", w)
	}
	a := int(binary.BigEndian.Uint16(u[2+w:]))
	if len(u) < 4+w+a {
		return nil, fmt.Errorf("path attributes of %d bytes run past the message (%d bytes left)", a, len(u)-4-w)
	}
	return u[4+w : 4+w+a], nil
}

// seen widens the time span of the data.
func (b *builder) seen(ts uint32) {
	if ts == 0 {
		return
	}
	t := time.Unix(int64(ts), 0).UTC()
	if b.stats.First.IsZero() || t.Before(b.stats.First) {
		b.stats.First = t
	}
	if t.After(b.stats.Last) {
		b.stats.Last = t
	}
}
