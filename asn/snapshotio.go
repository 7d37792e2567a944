package asn

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Encode writes the snapshot as JSON in canonical order: the document is
// indented, and each ASN, prefix, source failure and input is one line, so
// that snapshots diff well in review and large ones encode fast (it is
// written by hand: encoding/json with indentation was most of the cost of a
// 100k-prefix resolve). Strings are quoted by jsontext, the tokenizer
// ReadSnapshot reads them with.
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
			b = ew.appendPrefix(b, p)
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

// appendPrefix writes one prefix as one line of JSON.
func (w *evidenceWriter) appendPrefix(b []byte, p Prefix) []byte {
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
	b = w.append(b, p.Evidence)
	return append(b, '}')
}

// PrefixWriter writes prefixes as compact JSON, the form of a snapshot's
// prefix lines, remembering the last evidence strings it wrote. Append
// reports false, having written nothing, for a prefix it would not write
// exactly as encoding/json does (a string with anything but printable
// ASCII, quotes or backslashes, whose escaping differs between the two;
// an invalid prefix; a list encoding/json writes as null; a time it
// refuses).
type PrefixWriter struct{ w evidenceWriter }

// Append appends p, or reports false (see PrefixWriter).
func (pw *PrefixWriter) Append(b []byte, p Prefix) ([]byte, bool) {
	if !p.Prefix.IsValid() || p.Origins == nil {
		return b, false
	}
	for _, e := range p.Evidence {
		if !plainASCII(e.Source) || !plainASCII(e.Detail) || e.Seen.Year() < 0 || e.Seen.Year() > 9999 {
			return b, false
		}
	}
	if p.Evidence == nil {
		return b, false
	}
	return pw.w.appendPrefix(b, p), true
}

// plainASCII: printable ASCII without '"' and '\\' (written as is by
// every JSON encoder).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
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

// appendString writes s as a JSON string (jsontext's minimal escaping;
// invalid UTF-8 becomes U+FFFD, as encoding/json writes it).
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}
