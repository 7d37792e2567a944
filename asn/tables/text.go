package tables

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// maxLineBytes bounds one line of a text table.
const maxLineBytes = 1 << 20

// lineFunc reads one line (without its newline) into the builder.
type lineFunc func(line []byte, b *builder) error

// scanLines reads a line-oriented table: blank lines and '#' comments are
// skipped; a line that cannot be read is skipped too, counted in
// Stats.Bad, and the first one's error (naming its line) is returned at
// the end. A damaged stream ends the scan with what was read so far.
func scanLines(ctx context.Context, r io.Reader, compression string, b *builder, fn lineFunc) error {
	cr := &countingReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	var first error
	n := 0
	for sc.Scan() {
		n++
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			continue
		}
		b.stats.Records++
		if err := fn(line, b); err != nil {
			b.stats.Bad++
			if first == nil {
				first = fmt.Errorf("line %d: %w", n, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes: not a table of this format", n+1, maxLineBytes)
		}
		return fmt.Errorf("line %d (byte offset %d): %w", n+1, cr.n, streamError(cr.cause(err), compression))
	}
	return first
}

// pfx2asLine reads a CAIDA RouteViews prefix2as line: "prefix<TAB>length<TAB>
// origins", where origins is one ASN, several joined by '_' (a prefix
// announced by several origins, MOAS), and each of those may be several
// joined by ',' (an AS set: the route's AS path ends in an AS_SET). As for
// MRT paths, an AS set is no origin.
func pfx2asLine(line []byte, b *builder) error {
	f := strings.Fields(string(line))
	if len(f) != 3 {
		return fmt.Errorf("want \"prefix<TAB>length<TAB>ASN\", got %d fields", len(f))
	}
	bits, err := strconv.Atoi(f[1])
	if err != nil {
		return fmt.Errorf("prefix length %q is not a number", f[1])
	}
	addr, err := netip.ParseAddr(f[0])
	if err != nil || addr.Zone() != "" || bits < 0 || bits > addr.BitLen() {
		return fmt.Errorf("invalid prefix %s/%s", f[0], f[1])
	}
	p := netip.PrefixFrom(addr.Unmap(), bits)
	if p.Masked() != p {
		return fmt.Errorf("invalid prefix %s: host bits set", p)
	}
	var origins []uint32
	for _, part := range strings.Split(f[2], "_") {
		if strings.Contains(part, ",") {
			for _, a := range strings.Split(part, ",") {
				if _, err := parseASN(a); err != nil {
					return err
				}
			}
			b.stats.NoOrigin++
			continue
		}
		a, err := parseASN(part)
		if err != nil {
			return err
		}
		origins = append(origins, a)
	}
	for _, a := range origins {
		r := routeOf(p)
		r.origin = a
		b.add(r)
	}
	return nil
}

func parseASN(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "AS"), "as"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid ASN %q", s)
	}
	return uint32(v), nil
}

// bgptoolsLine reads a line of bgp.tools' table.jsonl:
// {"CIDR":"192.0.2.0/24","ASN":64500,"Hits":1234}; Hits (how many of its
// peers carry the route) becomes the route's peer count.
func bgptoolsLine(line []byte, b *builder) error {
	var j struct {
		CIDR *string `json:"CIDR"`
		ASN  *int64  `json:"ASN"`
		Hits int64   `json:"Hits"`
	}
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if j.CIDR == nil || j.ASN == nil {
		return errors.New(`want {"CIDR":..., "ASN":..., "Hits":...}`)
	}
	p, err := netip.ParsePrefix(*j.CIDR)
	if err != nil || p.Masked() != p {
		return fmt.Errorf("invalid CIDR %q", *j.CIDR)
	}
	if *j.ASN < 0 || *j.ASN > 1<<32-1 || j.Hits < 0 {
		return fmt.Errorf("invalid ASN %d or Hits %d", *j.ASN, j.Hits)
	}
	if *j.ASN == 0 {
		b.stats.Skipped++
		return nil
	}
	r := routeOf(p)
	r.origin, r.peers = uint32(*j.ASN), uint32(min(j.Hits, 1<<32-1))
	b.add(r)
	return nil
}

// ip2asnScan reads an IP-range table: iptoasn's ip2asn-v4.tsv /
// ip2asn-v6.tsv / -combined.tsv ("start<TAB>end<TAB>ASN<TAB>country<TAB>
// description"; ASN 0 means not routed; the -u32 files give IPv4
// addresses as numbers) or ip-location-db's asn CSV ("start,end,ASN,
// organisation", quoted where needed). Each range becomes its minimal CIDR
// cover, every CIDR with the range's ASN and organisation name.
func ip2asnScan(ctx context.Context, r io.Reader, compression string, b *builder) error {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(4096)
	first, _, _ := bytes.Cut(head, []byte("\n"))
	if bytes.Contains(first, []byte("\t")) || !bytes.Contains(first, []byte(",")) {
		return scanLines(ctx, br, compression, b, iptoasnLine)
	}
	return scanCSV(ctx, br, compression, b)
}

func iptoasnLine(line []byte, b *builder) error {
	f := strings.Split(string(line), "\t")
	if len(f) < 3 {
		return fmt.Errorf("want \"start<TAB>end<TAB>ASN<TAB>country<TAB>description\", got %d fields", len(f))
	}
	name := ""
	if len(f) >= 5 {
		name = strings.TrimSpace(f[4])
	}
	return addRange(b, f[0], f[1], f[2], name)
}

// scanCSV reads ip-location-db's CSV with encoding/csv (quoted names hold
// commas); a bad row is skipped, counted and the first one reported, like
// a bad line.
func scanCSV(ctx context.Context, r io.Reader, compression string, b *builder) error {
	cr := &countingReader{r: r}
	c := csv.NewReader(cr)
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	var first error
	for n := 0; ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := c.Read()
		if errors.Is(err, io.EOF) {
			return first
		}
		line, _ := c.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				b.stats.Bad++
				if first == nil {
					first = fmt.Errorf("line %d: %v", pe.StartLine, pe.Err)
				}
				continue
			}
			return fmt.Errorf("line %d (byte offset %d): %w", line, cr.n, streamError(cr.cause(err), compression))
		}
		if len(rec) == 0 || strings.HasPrefix(strings.TrimSpace(rec[0]), "#") {
			continue
		}
		b.stats.Records++
		if len(rec) != 4 {
			err = fmt.Errorf("want \"start,end,ASN,organisation\", got %d fields", len(rec))
		} else {
			err = addRange(b, rec[0], rec[1], rec[2], strings.TrimSpace(rec[3]))
		}
		if err != nil {
			b.stats.Bad++
			if first == nil {
				first = fmt.Errorf("line %d: %w", line, err)
			}
		}
	}
}

// addRange adds the minimal CIDR cover of an address range.
func addRange(b *builder, start, end, asnField, name string) error {
	lo, err := parseRangeAddr(start)
	if err != nil {
		return err
	}
	hi, err := parseRangeAddr(end)
	if err != nil {
		return err
	}
	rng := netipx.IPRangeFrom(lo, hi)
	if !rng.IsValid() {
		return fmt.Errorf("invalid range %s - %s", lo, hi)
	}
	a, err := parseASN(strings.TrimSpace(asnField))
	if err != nil {
		return err
	}
	if a == 0 {
		b.stats.Skipped++ // "Not routed"
		return nil
	}
	id := b.nameID(name)
	for _, p := range rangeCIDRs(rng) {
		r := routeOf(p)
		r.origin, r.name = a, id
		b.add(r)
	}
	return nil
}

// rangeCIDRs is the minimal list of prefixes covering exactly rng.
func rangeCIDRs(rng netipx.IPRange) []netip.Prefix { return rng.Prefixes() }

// cidrsRange is the range a list of adjacent prefixes covers (ok false if
// they are not adjacent and in order): the inverse of rangeCIDRs.
func cidrsRange(ps []netip.Prefix) (netipx.IPRange, bool) {
	if len(ps) == 0 {
		return netipx.IPRange{}, false
	}
	lo, hi := ps[0].Addr(), netipx.PrefixLastIP(ps[0])
	for _, p := range ps[1:] {
		if hi.Next() != p.Addr() {
			return netipx.IPRange{}, false
		}
		hi = netipx.PrefixLastIP(p)
	}
	return netipx.IPRangeFrom(lo, hi), true
}

// parseRangeAddr reads an address, or an IPv4 address as a number (the
// iptoasn -u32 and ip-location-db -num files).
func parseRangeAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	if v, err := strconv.ParseUint(s, 10, 32); err == nil {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
	}
	return netip.Addr{}, fmt.Errorf("invalid address %q", s)
}
