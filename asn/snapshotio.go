package asn

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxSnapshotBytes bounds what ReadSnapshot accepts, so a wrong file cannot
// exhaust memory.
const MaxSnapshotBytes = 512 << 20

// Encode writes the snapshot as JSON in canonical order: the document is
// indented, and each ASN, prefix, source failure and input is one line, so
// that snapshots diff well in review and large ones encode fast (it is
// written by hand: encoding/json with indentation was most of the cost of a
// 100k-prefix resolve).
func (s *Snapshot) Encode(w io.Writer) error {
	s.Normalize()
	bw := bufio.NewWriterSize(w, 256<<10)
	b := make([]byte, 0, 4096)
	var ew evidenceWriter
	flush := func() error {
		_, err := bw.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, "{\n  \"generated_at\": "...)
	b = appendTime(b, s.GeneratedAt)
	if s.Generator != "" {
		b = append(b, ",\n  \"generator\": "...)
		b = appendString(b, s.Generator)
	}
	b = append(b, ",\n  \"incomplete\": ["...)
	for i, in := range s.Incomplete {
		b = appendSep(b, i, "    ")
		b = append(b, `{"source":`...)
		b = appendString(b, in.Source)
		if in.Target != "" {
			b = append(b, `,"target":`...)
			b = appendString(b, in.Target)
		}
		b = append(b, `,"error":`...)
		b = appendString(b, in.Error)
		b = append(b, '}')
	}
	b = appendClose(b, len(s.Incomplete), "  ", ']')
	if len(s.Provenance) > 0 {
		b = append(b, ",\n  \"provenance\": ["...)
		for i, in := range s.Provenance {
			b = appendSep(b, i, "    ")
			b = append(b, `{"source":`...)
			b = appendString(b, in.Source)
			b = append(b, `,"input":`...)
			b = appendString(b, in.Input)
			if in.SHA256 != "" {
				b = append(b, `,"sha256":`...)
				b = appendString(b, in.SHA256)
			}
			if in.Note != "" {
				b = append(b, `,"note":`...)
				b = appendString(b, in.Note)
			}
			if in.Kind != "" {
				b = append(b, `,"kind":`...)
				b = appendString(b, in.Kind)
			}
			b = append(b, '}')
		}
		b = appendClose(b, len(s.Provenance), "  ", ']')
	}
	b = append(b, ",\n  \"targets\": ["...)
	for ti, t := range s.Targets {
		b = appendSep(b, ti, "    ")
		b = append(b, "{\n      \"name\": "...)
		b = appendString(b, t.Name)
		if t.Description != "" {
			b = append(b, ",\n      \"description\": "...)
			b = appendString(b, t.Description)
		}
		if t.ID != 0 {
			b = append(b, ",\n      \"id\": "...)
			b = strconv.AppendUint(b, uint64(t.ID), 10)
		}
		b = append(b, ",\n      \"asns\": ["...)
		for i, a := range t.ASNs {
			b = appendSep(b, i, "        ")
			b = append(b, `{"asn":`...)
			b = strconv.AppendUint(b, uint64(a.ASN), 10)
			if a.Name != "" {
				b = append(b, `,"name":`...)
				b = appendString(b, a.Name)
			}
			if a.NameOnly {
				b = append(b, `,"name_only":true`...)
			}
			b = ew.append(b, a.Evidence)
			b = append(b, '}')
		}
		b = appendClose(b, len(t.ASNs), "      ", ']')
		b = append(b, ",\n      \"prefixes\": ["...)
		for i, p := range t.Prefixes {
			b = appendSep(b, i, "        ")
			b = append(b, `{"prefix":"`...)
			b = p.Prefix.AppendTo(b)
			b = append(b, `","origins":[`...)
			for j, o := range p.Origins {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendUint(b, uint64(o), 10)
			}
			b = append(b, ']')
			if len(p.Upstreams) > 0 {
				b = append(b, `,"upstreams":[`...)
				for j, o := range p.Upstreams {
					if j > 0 {
						b = append(b, ',')
					}
					b = strconv.AppendUint(b, uint64(o), 10)
				}
				b = append(b, ']')
			}
			b = ew.append(b, p.Evidence)
			b = append(b, '}')
			if len(b) > 64<<10 {
				if err := flush(); err != nil {
					return fmt.Errorf("encode snapshot: %w", err)
				}
			}
		}
		b = appendClose(b, len(t.Prefixes), "      ", ']')
		b = append(b, "\n    }"...)
	}
	b = appendClose(b, len(s.Targets), "  ", ']')
	b = append(b, "\n}\n"...)
	if err := flush(); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return nil
}

func appendSep(b []byte, i int, indent string) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, '\n')
	return append(b, indent...)
}

func appendClose(b []byte, n int, indent string, c byte) []byte {
	if n > 0 {
		b = append(b, '\n')
		b = append(b, indent...)
	}
	return append(b, c)
}

// evidenceWriter remembers the last source, detail and time it wrote: in
// large snapshots consecutive entries mostly repeat them (one registry, one
// detail per origin), and escaping or formatting them again was most of the
// encoding time.
type evidenceWriter struct {
	source, detail string
	seen           time.Time
	src, det, tim  []byte
}

func (w *evidenceWriter) append(b []byte, ev []Evidence) []byte {
	b = append(b, `,"evidence":[`...)
	for i, e := range ev {
		if i > 0 {
			b = append(b, ',')
		}
		if w.src == nil || e.Source != w.source {
			w.source, w.src = e.Source, appendString(w.src[:0], e.Source)
		}
		b = append(b, `{"source":`...)
		b = append(b, w.src...)
		if e.Detail != "" {
			if w.det == nil || e.Detail != w.detail {
				w.detail, w.det = e.Detail, appendString(w.det[:0], e.Detail)
			}
			b = append(b, `,"detail":`...)
			b = append(b, w.det...)
		}
		if w.tim == nil || !e.Seen.Equal(w.seen) || e.Seen.Location() != w.seen.Location() {
			w.seen, w.tim = e.Seen, appendTime(w.tim[:0], e.Seen)
		}
		b = append(b, `,"seen":`...)
		b = append(b, w.tim...)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// safeJSON marks the ASCII bytes encoding/json writes as they are (it
// escapes control characters, '"', '\\' and, HTML-safe, '<', '>', '&').
var safeJSON = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string with the same escaping as
// encoding/json (HTML-safe, invalid UTF-8 replaced).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safeJSON[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// raw mirrors Snapshot with prefixes as strings, so that every bad value can
// be reported with its place instead of a generic decode error.
type rawSnapshot struct {
	GeneratedAt *time.Time   `json:"generated_at"`
	Generator   string       `json:"generator"`
	Incomplete  []Incomplete `json:"incomplete"`
	Provenance  []Input      `json:"provenance"`
	Targets     []rawTarget  `json:"targets"`
}

type rawTarget struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	ID          uint32      `json:"id"`
	ASNs        []rawASN    `json:"asns"`
	Prefixes    []rawPrefix `json:"prefixes"`
}

type rawASN struct {
	ASN      *int64     `json:"asn"`
	Name     string     `json:"name"`
	NameOnly bool       `json:"name_only"`
	Evidence []Evidence `json:"evidence"`
}

type rawPrefix struct {
	Prefix    string     `json:"prefix"`
	Origins   []int64    `json:"origins"`
	Upstreams []int64    `json:"upstreams"`
	Evidence  []Evidence `json:"evidence"`
}

// DecodeSnapshot parses and validates a Snapshot JSON document. name is used
// in errors (a file name, or "embedded snapshot").
func DecodeSnapshot(name string, data []byte) (*Snapshot, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty document", name)
	}
	raw, ok := fastDecode(data)
	if !ok {
		var err error
		if raw, err = slowDecode(name, data); err != nil {
			return nil, err
		}
	}
	return convertRaw(name, raw)
}

// slowDecode decodes with encoding/json: whatever fastDecode declines, and
// the errors, with their lines.
func slowDecode(name string, data []byte) (rawSnapshot, error) {
	var raw rawSnapshot
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value") {
			return rawSnapshot{}, fmt.Errorf("%s: line %d: trailing data after the JSON document", name, lineOf(data, se.Offset))
		}
		return rawSnapshot{}, fmt.Errorf("%s: %s", name, describeJSONError(data, err))
	}
	return raw, nil
}

// convertRaw validates a decoded document and builds the Snapshot.
func convertRaw(name string, raw rawSnapshot) (*Snapshot, error) {
	bad := func(path, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", name, path, fmt.Sprintf(format, args...))
	}
	if raw.GeneratedAt == nil {
		return nil, bad("generated_at", "missing")
	}
	s := &Snapshot{GeneratedAt: *raw.GeneratedAt, Generator: raw.Generator, Incomplete: raw.Incomplete, Provenance: raw.Provenance}
	seen := map[string]bool{}
	for ti, rt := range raw.Targets {
		tp := fmt.Sprintf("targets[%d]", ti)
		if err := ValidTargetName(rt.Name); err != nil {
			return nil, bad(tp+".name", "%v", err)
		}
		if seen[rt.Name] {
			return nil, bad(tp+".name", "duplicate target %q", rt.Name)
		}
		seen[rt.Name] = true
		t := TargetResult{Name: rt.Name, Description: rt.Description, ID: rt.ID}
		for ai, ra := range rt.ASNs {
			ap := func() string { return fmt.Sprintf("%s.asns[%d]", tp, ai) } // built only for errors
			if ra.ASN == nil {
				return nil, bad(ap()+".asn", "missing")
			}
			a, err := checkASN(*ra.ASN)
			if err != nil {
				return nil, bad(ap()+".asn", "%v", err)
			}
			if err := checkEvidence(ra.Evidence); err != nil {
				return nil, bad(ap()+".evidence", "%v", err)
			}
			t.ASNs = append(t.ASNs, ASN{ASN: a, Name: ra.Name, NameOnly: ra.NameOnly, Evidence: ra.Evidence})
		}
		for pi, rp := range rt.Prefixes {
			pp := func() string { return fmt.Sprintf("%s.prefixes[%d]", tp, pi) } // built only for errors
			p, err := ParsePrefix(rp.Prefix)
			if err != nil {
				return nil, bad(pp()+".prefix", "%v", err)
			}
			var origins []uint32
			for oi, o := range rp.Origins {
				a, err := checkASN(o)
				if err != nil {
					return nil, bad(fmt.Sprintf("%s.origins[%d]", pp(), oi), "%v", err)
				}
				origins = append(origins, a)
			}
			var upstreams []uint32
			for ui, o := range rp.Upstreams {
				a, err := checkASN(o)
				if err != nil {
					return nil, bad(fmt.Sprintf("%s.upstreams[%d]", pp(), ui), "%v", err)
				}
				upstreams = append(upstreams, a)
			}
			if err := checkEvidence(rp.Evidence); err != nil {
				return nil, bad(pp()+".evidence", "%v", err)
			}
			t.Prefixes = append(t.Prefixes, Prefix{Prefix: p, Origins: origins, Upstreams: upstreams, Evidence: rp.Evidence})
		}
		s.Targets = append(s.Targets, t)
	}
	s.Normalize()
	return s, nil
}

// ReadSnapshotFile reads and validates a Snapshot JSON file.
func ReadSnapshotFile(path string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	// Refused before a byte is read: reading first would hold
	// MaxSnapshotBytes (and more while the buffer grows) for nothing.
	if st.Mode().IsRegular() && st.Size() > MaxSnapshotBytes {
		return nil, fmt.Errorf("snapshot %s: %d bytes, larger than %d bytes", path, st.Size(), MaxSnapshotBytes)
	}
	var data []byte
	if st.Size() > 0 {
		data = make([]byte, 0, st.Size()+512) // one allocation instead of doubling
	}
	buf := bytes.NewBuffer(data)
	_, err = buf.ReadFrom(io.LimitReader(f, MaxSnapshotBytes+1))
	data = buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if len(data) > MaxSnapshotBytes {
		return nil, fmt.Errorf("snapshot %s: larger than %d bytes", path, MaxSnapshotBytes)
	}
	return DecodeSnapshot(path, data)
}

// ParsePrefix parses a CIDR prefix and insists it is in canonical form (no
// host bits set), so that two spellings of one prefix cannot both exist.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: IPv4-mapped IPv6", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

func checkASN(v int64) (uint32, error) {
	if v <= 0 || v > 4294967295 {
		return 0, fmt.Errorf("ASN %d out of range 1-4294967295", v)
	}
	if v == 23456 {
		return 0, fmt.Errorf("ASN 23456 is AS_TRANS, not a real origin")
	}
	return uint32(v), nil
}

func checkEvidence(ev []Evidence) error {
	for i, e := range ev {
		if e.Source == "" {
			return fmt.Errorf("[%d].source: missing", i)
		}
	}
	return nil
}

// describeJSONError turns a decode error into one that names the line.
func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("line %d: %v", lineOf(data, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Sprintf("line %d: field %s: cannot use JSON %s as %s", lineOf(data, te.Offset), te.Field, te.Value, te.Type)
	case errors.Is(err, io.EOF):
		return "empty document"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON document"
	}
	return err.Error()
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}
