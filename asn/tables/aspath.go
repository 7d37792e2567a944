package tables

import (
	"encoding/binary"
	"fmt"
)

// BGP path attribute types and AS path segment types (RFC 4271, RFC 5065,
// RFC 6793).
const (
	attrASPath  = 2
	attrAS4Path = 17

	segSet         = 1
	segSequence    = 2
	segConfedSeq   = 3
	segConfedSet   = 4
	flagExtLength  = 0x10
	asTrans        = 23456
	maxSegmentType = segConfedSet
)

// pathInfo is what the origin rule needs from one AS path.
type pathInfo struct {
	origin uint32 // last AS of the path, when it ends in an AS_SEQUENCE
	ends   bool   // the path ends in an AS_SEQUENCE (has an origin)
	count  int    // path length as RFC 6793 §4.2.3 counts it
}

// walkPath decodes AS path segments with ASes of size asz (2 or 4 bytes).
func walkPath(v []byte, asz int) (pathInfo, error) {
	var p pathInfo
	off := 0
	for off < len(v) {
		if len(v)-off < 2 {
			return p, fmt.Errorf("segment header cut at +%d", off)
		}
		typ, n := v[off], int(v[off+1])
		if typ == 0 || typ > maxSegmentType {
			return p, fmt.Errorf("unknown segment type %d at +%d", typ, off)
		}
		if need := 2 + n*asz; need > len(v)-off {
			return p, fmt.Errorf("segment at +%d says %d ASes (%d bytes), %d bytes left", off, n, need, len(v)-off)
		}
		if n > 0 {
			last := off + 2 + (n-1)*asz
			var a uint32
			if asz == 4 {
				a = binary.BigEndian.Uint32(v[last:])
			} else {
				a = uint32(binary.BigEndian.Uint16(v[last:]))
			}
			p.ends, p.origin = typ == segSequence, a
			switch typ {
			case segSequence:
				p.count += n
			case segSet:
				p.count++
			}
		}
		off += 2 + n*asz
	}
	if !p.ends {
		p.origin = 0
	}
	return p, nil
}

// pathOrigin applies asfence's origin rule to a route's path attributes:
// the origin is the last AS of the AS path when the path ends in an
// AS_SEQUENCE; a path ending in an AS_SET (aggregated routes) or a
// confederation segment, or an empty path, gives no origin (ok false).
// as4 says whether AS_PATH carries 4-byte ASes (TABLE_DUMP_V2 and the AS4
// BGP4MP subtypes) or 2-byte ones (TABLE_DUMP, BGP4MP MESSAGE); with
// 2-byte ASes, an AS4_PATH is merged as RFC 6793 §4.2.3 says: when AS_PATH
// counts at least as many ASes, the path ends with the whole AS4_PATH, so
// its origin is AS4_PATH's. A malformed AS4_PATH is ignored (RFC 6793 §6);
// malformed attributes or AS_PATH are errors naming the offset within
// attrs.
func pathOrigin(attrs []byte, as4 bool) (origin uint32, ok bool, err error) {
	var asPath, as4Path []byte
	seenPath := false
	off := 0
	for off < len(attrs) {
		if len(attrs)-off < 3 {
			return 0, false, fmt.Errorf("attribute header cut at +%d (%d bytes left)", off, len(attrs)-off)
		}
		flags, typ := attrs[off], attrs[off+1]
		hdr, n := 3, int(attrs[off+2])
		if flags&flagExtLength != 0 {
			if len(attrs)-off < 4 {
				return 0, false, fmt.Errorf("attribute header cut at +%d (%d bytes left)", off, len(attrs)-off)
			}
			hdr, n = 4, int(binary.BigEndian.Uint16(attrs[off+2:]))
		}
		if hdr+n > len(attrs)-off {
			return 0, false, fmt.Errorf("attribute %s at +%d: length %d runs past the end of the attributes (%d bytes left)", attrName(typ), off, n, len(attrs)-off-hdr)
		}
		v := attrs[off+hdr : off+hdr+n]
		switch typ {
		case attrASPath:
			asPath, seenPath = v, true
		case attrAS4Path:
			as4Path = v
		}
		off += hdr + n
	}
	if !seenPath {
		return 0, false, nil
	}
	asz := 2
	if as4 {
		asz = 4
	}
	p, err := walkPath(asPath, asz)
	if err != nil {
		return 0, false, fmt.Errorf("attribute AS_PATH (%d-byte ASes, %d bytes): %w", asz, len(asPath), err)
	}
	if !as4 && as4Path != nil {
		if p4, err := walkPath(as4Path, 4); err == nil && p4.count > 0 && p.count >= p4.count {
			p = p4
		}
	}
	return p.origin, p.ends, nil
}

func attrName(t byte) string {
	switch t {
	case attrASPath:
		return "AS_PATH"
	case attrAS4Path:
		return "AS4_PATH"
	}
	return fmt.Sprintf("type %d", t)
}
