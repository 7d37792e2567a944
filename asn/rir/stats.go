// Package rir reads the RIRs' delegated statistics files (the "RIR
// statistics exchange format", standard and extended) and uses the extended
// files' opaque-id, which is the same for every resource of one holder, to
// find all ASNs and address blocks registered to a target's holders.
package rir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is a record's resource type.
type Kind string

// Resource types of the format.
const (
	ASN  Kind = "asn"
	IPv4 Kind = "ipv4"
	IPv6 Kind = "ipv6"
)

// Record is one allocation or assignment line.
type Record struct {
	Registry string
	CC       string
	Kind     Kind
	// First and Count describe an ASN record (Count ASNs from First).
	First, Count uint32
	// Prefixes are the minimal CIDR cover of an address record.
	Prefixes []netip.Prefix
	// Date is when the resource was allocated (zero if the file omits it).
	Date   time.Time
	Status string
	// OpaqueID identifies the holder in extended files ("" otherwise).
	OpaqueID string
	Line     int
}

// Contains reports whether an ASN record covers asn.
func (r *Record) Contains(asn uint32) bool {
	return r.Kind == ASN && asn >= r.First && uint64(asn) < uint64(r.First)+uint64(r.Count)
}

// Describe says how the resource was registered: "allocated CN 2012-03-13",
// with the block for multi-ASN records.
func (r *Record) Describe() string {
	s := r.Status
	if r.CC != "" {
		s += " " + r.CC
	}
	if !r.Date.IsZero() {
		s += " " + r.Date.Format(time.DateOnly)
	}
	if r.Kind == ASN && r.Count > 1 {
		s += fmt.Sprintf(" (block AS%d-AS%d)", r.First, uint64(r.First)+uint64(r.Count)-1)
	}
	return s
}

// File is a parsed statistics file. Only allocated and assigned records
// are kept; available and reserved space has no holder.
type File struct {
	// Registry is the version line's registry ("apnic", "ripencc", "nro").
	Registry string
	Serial   string
	// Date is the file's data date (serial or end date), zero if unknown.
	Date time.Time
	// Extended is true when records carry opaque-ids.
	Extended bool
	Records  []Record

	asns     []int // indices of ASN records, sorted by First
	byHolder map[string][]int
	holdASNs map[string]uint64 // ASNs held per opaque-id
}

// Parse reads a statistics file. Any malformed line is an error naming it:
// a file that cannot be read completely is not used at all.
func Parse(data []byte) (*File, error) {
	f := &File{byHolder: map[string][]int{}, holdASNs: map[string]uint64{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	header := false
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "|")
		if !header {
			if err := f.parseVersion(fields); err != nil {
				return nil, fmt.Errorf("line %d: %w (want the version line \"version|registry|serial|records|startdate|enddate|UTCoffset\", got %s)", n, err, quote(line))
			}
			header = true
			continue
		}
		if len(fields) == 6 && fields[5] == "summary" {
			continue
		}
		r, err := parseRecord(fields)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", n, err, quote(line))
		}
		if r.Status != "allocated" && r.Status != "assigned" {
			continue
		}
		r.Line = n
		f.Records = append(f.Records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	if !header {
		return nil, errors.New("no version line: not an RIR statistics file")
	}
	f.index()
	return f, nil
}

func quote(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strconv.Quote(s)
}

func (f *File) parseVersion(fields []string) error {
	if len(fields) < 7 {
		return fmt.Errorf("%d fields", len(fields))
	}
	if _, err := strconv.ParseFloat(fields[0], 64); err != nil {
		return fmt.Errorf("version %q is not a number", fields[0])
	}
	if fields[1] == "" {
		return errors.New("empty registry")
	}
	f.Registry = strings.ToLower(fields[1])
	f.Serial = fields[2]
	// APNIC's serial is the file date; ARIN's is a timestamp, so fall back
	// to the end date.
	for _, s := range []string{fields[2], fields[5]} {
		if d, err := parseDate(s); err == nil && !d.IsZero() {
			f.Date = d
			break
		}
	}
	return nil
}

func parseDate(s string) (time.Time, error) {
	if s == "" || s == "00000000" {
		return time.Time{}, nil
	}
	return time.Parse("20060102", s)
}

func parseRecord(fields []string) (Record, error) {
	if len(fields) < 7 {
		return Record{}, fmt.Errorf("record has %d fields, want at least 7 (registry|cc|type|start|value|date|status)", len(fields))
	}
	r := Record{Registry: fields[0], CC: fields[1], Kind: Kind(fields[2]), Status: strings.ToLower(fields[6])}
	if len(fields) > 7 {
		r.OpaqueID = fields[7]
	}
	d, err := parseDate(fields[5])
	if err != nil {
		return Record{}, fmt.Errorf("date %q is not YYYYMMDD", fields[5])
	}
	r.Date = d
	start, value := fields[3], fields[4]
	switch r.Kind {
	case ASN:
		first, err1 := strconv.ParseUint(start, 10, 32)
		count, err2 := strconv.ParseUint(value, 10, 32)
		if err1 != nil || err2 != nil || count == 0 || first+count-1 > 0xFFFFFFFF {
			return Record{}, fmt.Errorf("invalid ASN range start %q count %q", start, value)
		}
		r.First, r.Count = uint32(first), uint32(count)
	case IPv4:
		a, err1 := netip.ParseAddr(start)
		count, err2 := strconv.ParseUint(value, 10, 64)
		if err1 != nil || !a.Is4() || err2 != nil || count == 0 {
			return Record{}, fmt.Errorf("invalid IPv4 range start %q count %q", start, value)
		}
		p, err := cover4(a, count)
		if err != nil {
			return Record{}, err
		}
		r.Prefixes = p
	case IPv6:
		a, err1 := netip.ParseAddr(start)
		bits, err2 := strconv.Atoi(value)
		if err1 != nil || !a.Is6() || a.Is4In6() || err2 != nil || bits < 0 || bits > 128 {
			return Record{}, fmt.Errorf("invalid IPv6 block %q/%q", start, value)
		}
		p := netip.PrefixFrom(a, bits)
		if p.Masked() != p {
			return Record{}, fmt.Errorf("IPv6 block %s has host bits set", p)
		}
		r.Prefixes = []netip.Prefix{p}
	default:
		return Record{}, fmt.Errorf("unknown type %q (want asn, ipv4 or ipv6)", fields[2])
	}
	return r, nil
}

// cover4 returns the minimal list of prefixes covering count addresses from
// start (RIR counts need not be powers of two: 768 is a /23 and a /24).
func cover4(start netip.Addr, count uint64) ([]netip.Prefix, error) {
	b := start.As4()
	cur := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	if cur+count > 1<<32 {
		return nil, fmt.Errorf("IPv4 range %s + %d runs past 255.255.255.255", start, count)
	}
	var out []netip.Prefix
	for count > 0 {
		// The largest aligned block starting at cur that fits in count.
		size := uint64(1) << 32
		if cur != 0 {
			size = cur & -cur
		}
		for size > count {
			size >>= 1
		}
		a := netip.AddrFrom4([4]byte{byte(cur >> 24), byte(cur >> 16), byte(cur >> 8), byte(cur)})
		out = append(out, netip.PrefixFrom(a, 32-bits.TrailingZeros64(size)))
		cur += size
		count -= size
	}
	return out, nil
}

func (f *File) index() {
	for i := range f.Records {
		r := &f.Records[i]
		if r.OpaqueID != "" {
			f.Extended = true
			f.byHolder[r.OpaqueID] = append(f.byHolder[r.OpaqueID], i)
			if r.Kind == ASN {
				f.holdASNs[r.OpaqueID] += uint64(r.Count)
			}
		}
		if r.Kind == ASN {
			f.asns = append(f.asns, i)
		}
	}
	slices.SortStableFunc(f.asns, func(a, b int) int {
		return int(int64(f.Records[a].First) - int64(f.Records[b].First))
	})
}

// FindASN returns the record covering asn (a single ASN or a block).
func (f *File) FindASN(asn uint32) (*Record, bool) {
	// The last record starting at or before asn is the only candidate.
	i, _ := slices.BinarySearchFunc(f.asns, asn, func(idx int, a uint32) int {
		if f.Records[idx].First <= a {
			return -1
		}
		return 1
	})
	if i == 0 {
		return nil, false
	}
	r := &f.Records[f.asns[i-1]]
	return r, r.Contains(asn)
}

// Holder returns the records of one opaque-id.
func (f *File) Holder(id string) []*Record {
	var out []*Record
	for _, i := range f.byHolder[id] {
		out = append(out, &f.Records[i])
	}
	return out
}

// HolderASNs is how many ASNs one opaque-id holds.
func (f *File) HolderASNs(id string) uint64 { return f.holdASNs[id] }
