package asn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// MaxSnapshotBytes bounds what ReadSnapshot accepts, so a wrong file cannot
// run for ever.
const MaxSnapshotBytes = 512 << 20

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
	// Refused before a byte is read.
	if st.Mode().IsRegular() && st.Size() > MaxSnapshotBytes {
		return nil, fmt.Errorf("snapshot %s: %d bytes, larger than %d bytes", path, st.Size(), MaxSnapshotBytes)
	}
	hint := countPrefixes(f)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return readSnapshot(path, f, hint, func(off int64) int {
		// Errors name the line: count it in a second pass over the file.
		g, err := os.Open(path)
		if err != nil {
			return 0
		}
		defer g.Close()
		return countLines(io.LimitReader(g, off))
	})
}

// DecodeSnapshot parses and validates a Snapshot JSON document. name is used
// in errors (a file name, or "embedded snapshot").
func DecodeSnapshot(name string, data []byte) (*Snapshot, error) {
	return readSnapshot(name, bytes.NewReader(data), countPrefixes(bytes.NewReader(data)), func(off int64) int {
		return countLines(bytes.NewReader(data[:min(max(off, 0), int64(len(data)))]))
	})
}

// ReadSnapshot reads and validates a Snapshot JSON document from r. It
// streams: the document is never held whole, only what it decodes to.
func ReadSnapshot(name string, r io.Reader) (*Snapshot, error) {
	return readSnapshot(name, r, 0, nil)
}

// prefixMember is how the writer starts every prefix object's first member.
var prefixMember = []byte(`"prefix":`)

// countPrefixes counts the prefix members of a document (as the writer
// lays them out; a document laid out otherwise counts fewer), so that the
// reader can hold every target's prefixes in one array sized once instead
// of growing and joining (a million prefixes are 100 MB to copy). Only a
// capacity hint: never more than MaxSnapshotBytes are read.
func countPrefixes(r io.Reader) int {
	n := 0
	buf := make([]byte, 0, 1<<20)
	r = io.LimitReader(r, MaxSnapshotBytes)
	for {
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		n += bytes.Count(buf, prefixMember)
		keep := min(len(buf), len(prefixMember)-1) // a member split across reads
		buf = buf[:copy(buf, buf[len(buf)-keep:])]
		if err != nil {
			return n
		}
	}
}

func countLines(r io.Reader) int {
	n := 1
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}

// errTooLarge ends a document longer than MaxSnapshotBytes.
var errTooLarge = fmt.Errorf("larger than %d bytes", MaxSnapshotBytes)

type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// snapReader decodes one document with the jsontext tokenizer (syntax, string
// escapes and UTF-8 are its job; duplicate names are rejected) and checks
// every value as it goes, so that an error names its place: the field path
// and the line. Unknown names are skipped and null reads as absent.
type snapReader struct {
	name   string
	dec    *jsontext.Decoder
	lineOf func(off int64) int
	// strs interns evidence sources and details: a large snapshot repeats a
	// few of them a million times.
	strs map[string]string
	// seen caches the last evidence time as written, for the same reason.
	seenRaw []byte
	seen    time.Time
	// ev and origins are arenas: every prefix's evidence and origins are
	// sub-slices of a few large arrays instead of two allocations each.
	ev      []Evidence
	origins []uint32
	scratch []byte
	// evCache and asnCache map the raw text of an evidence or ASN list
	// read before to its decoded, normalized list, which every later
	// equal list shares (a million prefixes of one registry answer have
	// the same evidence and origin: read once, stored once). A list not
	// seen before is decoded from its raw text by sub, a second decoder,
	// at base: offsets in errors are the document's.
	evCache  map[string][]Evidence
	asnCache map[string][]uint32
	main     *jsontext.Decoder
	sub      *jsontext.Decoder
	subR     bytes.Reader
	rawBuf   []byte
	base     int64
	// prefixes, when the document's prefixes were counted, has room for
	// all of them: each target's are a part of it.
	prefixes []Prefix
}

// decodeError is a bad value at a path, found at a byte offset.
type decodeError struct {
	path string
	off  int64
	msg  string
}

func (e *decodeError) Error() string { return e.path + ": " + e.msg }

func readSnapshot(name string, r io.Reader, prefixes int, lineOf func(int64) int) (*Snapshot, error) {
	d := &snapReader{
		name:     name,
		dec:      jsontext.NewDecoder(&limitReader{r: r, left: MaxSnapshotBytes}),
		lineOf:   lineOf,
		strs:     map[string]string{},
		evCache:  map[string][]Evidence{},
		asnCache: map[string][]uint32{},
	}
	d.main = d.dec
	if prefixes > 0 {
		d.prefixes = make([]Prefix, 0, prefixes)
	}
	s, err := d.document()
	if err != nil {
		return nil, d.describe(err)
	}
	s.Normalize()
	return s, nil
}

// describe turns a decoding error into one naming the input and the place.
func (d *snapReader) describe(err error) error {
	line := func(off int64) string {
		if d.lineOf == nil {
			return fmt.Sprintf("offset %d", off)
		}
		return fmt.Sprintf("line %d", d.lineOf(off))
	}
	var de *decodeError
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("%s: %w", d.name, errTooLarge)
	case errors.As(err, &de) && de.off < 0:
		return fmt.Errorf("%s: %s", d.name, de.Error())
	case errors.As(err, &de):
		return fmt.Errorf("%s: %s: %s", d.name, line(de.off), de.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: truncated JSON document", d.name)
	case errors.As(err, &se):
		msg := se.Err.Error()
		if se.JSONPointer != "" {
			msg += " (in " + string(se.JSONPointer) + ")"
		}
		return fmt.Errorf("%s: %s: %s", d.name, line(se.ByteOffset), msg)
	}
	return fmt.Errorf("%s: %w", d.name, err)
}

// bad reports a value that is not what its field holds, at the value just read.
func (d *snapReader) bad(path func() string, format string, args ...any) error {
	return &decodeError{path: path(), off: d.base + d.dec.InputOffset(), msg: fmt.Sprintf(format, args...)}
}

// invalid reports a value that decoded but does not validate (no line: the
// path says where).
func invalid(path string, format string, args ...any) error {
	return &decodeError{path: path, off: -1, msg: fmt.Sprintf(format, args...)}
}

func (d *snapReader) document() (*Snapshot, error) {
	tok, err := d.dec.ReadToken()
	switch {
	case err == io.EOF:
		return nil, errors.New("empty document")
	case err != nil:
		return nil, err
	case tok.Kind() != '{':
		return nil, d.bad(func() string { return "document" }, "want a JSON object, got %s", tok.Kind())
	}
	s := &Snapshot{}
	var haveTime bool
	err = d.members(func(key []byte) error {
		switch string(key) {
		case "generated_at":
			t, ok, err := d.time(func() string { return "generated_at" })
			s.GeneratedAt, haveTime = t, ok
			return err
		case "generator":
			s.Generator, err = d.str(func() string { return "generator" }, false)
			return err
		case "incomplete":
			return d.array(func() string { return "incomplete" }, func(i int) error {
				var in Incomplete
				err := d.strings(func() string { return fmt.Sprintf("incomplete[%d]", i) },
					map[string]*string{"source": &in.Source, "target": &in.Target, "error": &in.Error})
				s.Incomplete = append(s.Incomplete, in)
				return err
			})
		case "provenance":
			return d.array(func() string { return "provenance" }, func(i int) error {
				var in Input
				err := d.strings(func() string { return fmt.Sprintf("provenance[%d]", i) },
					map[string]*string{"source": &in.Source, "input": &in.Input, "sha256": &in.SHA256, "note": &in.Note, "kind": &in.Kind})
				s.Provenance = append(s.Provenance, in)
				return err
			})
		case "targets":
			seen := map[string]bool{}
			return d.array(func() string { return "targets" }, func(i int) error {
				t, err := d.target(i)
				if err != nil {
					return err
				}
				if seen[t.Name] {
					return invalid(fmt.Sprintf("targets[%d].name", i), "duplicate target %q", t.Name)
				}
				seen[t.Name] = true
				s.Targets = append(s.Targets, t)
				return nil
			})
		}
		return d.dec.SkipValue()
	})
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return nil, d.bad(func() string { return "document" }, "trailing data after the JSON document")
		}
		return nil, err
	}
	if !haveTime {
		return nil, invalid("generated_at", "missing")
	}
	return s, nil
}

func (d *snapReader) target(i int) (TargetResult, error) {
	var t TargetResult
	tp := func() string { return fmt.Sprintf("targets[%d]", i) }
	var chunks [][]Prefix
	var cur []Prefix
	err := d.object(tp, func(key []byte) (err error) {
		switch string(key) {
		case "name":
			t.Name, err = d.str(func() string { return tp() + ".name" }, false)
		case "description":
			t.Description, err = d.str(func() string { return tp() + ".description" }, false)
		case "id":
			var v uint64
			v, _, err = d.uint(func() string { return tp() + ".id" }, 1<<32-1)
			t.ID = uint32(v)
		case "asns":
			err = d.array(func() string { return tp() + ".asns" }, func(j int) error {
				a, err := d.asn(func() string { return fmt.Sprintf("%s.asns[%d]", tp(), j) })
				t.ASNs = append(t.ASNs, a)
				return err
			})
		case "prefixes":
			// Chunks, joined once at the end: no copying of a growing
			// slice; or, when the document's prefixes were counted, the
			// room left in d.prefixes (a wrong count only means chunks
			// after it is full).
			cur = d.prefixes[len(d.prefixes):]
			err = d.array(func() string { return tp() + ".prefixes" }, func(j int) error {
				if len(cur) == cap(cur) {
					if cur != nil {
						chunks = append(chunks, cur)
					}
					cur = make([]Prefix, 0, min(1<<16, 64<<len(chunks)))
				}
				p, err := d.prefix(func() string { return fmt.Sprintf("%s.prefixes[%d]", tp(), j) })
				cur = append(cur, p)
				return err
			})
		default:
			err = d.dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return t, err
	}
	if err := ValidTargetName(t.Name); err != nil {
		return t, invalid(tp()+".name", "%v", err)
	}
	if chunks == nil {
		t.Prefixes = cur[:len(cur):len(cur)]
		if len(cur) > 0 && cap(d.prefixes) > len(d.prefixes) && &cur[0] == &d.prefixes[:len(d.prefixes)+1][len(d.prefixes)] {
			d.prefixes = d.prefixes[:len(d.prefixes)+len(cur)]
		}
	} else {
		n := len(cur)
		for _, c := range chunks {
			n += len(c)
		}
		t.Prefixes = make([]Prefix, 0, n)
		for _, c := range chunks {
			t.Prefixes = append(t.Prefixes, c...)
		}
		t.Prefixes = append(t.Prefixes, cur...)
	}
	return t, nil
}

func (d *snapReader) asn(path func() string) (ASN, error) {
	var a ASN
	var have bool
	err := d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "asn":
			var v uint64
			v, have, err = d.uint(func() string { return path() + ".asn" }, 1<<32-1)
			if err == nil && have {
				var e error
				if a.ASN, e = checkASN(int64(v)); e != nil {
					err = invalid(path()+".asn", "%v", e)
				}
			}
		case "name":
			a.Name, err = d.str(func() string { return path() + ".name" }, false)
		case "name_only":
			a.NameOnly, err = d.bool(func() string { return path() + ".name_only" })
		case "evidence":
			a.Evidence, err = d.evidence(func() string { return path() + ".evidence" })
		default:
			err = d.dec.SkipValue()
		}
		return err
	})
	if err == nil && !have {
		err = invalid(path()+".asn", "missing")
	}
	return a, err
}

func (d *snapReader) prefix(path func() string) (Prefix, error) {
	var p Prefix
	err := d.object(path, func(key []byte) (err error) {
		switch string(key) {
		case "prefix":
			var v jsontext.Value
			if v, err = d.value(func() string { return path() + ".prefix" }, '"'); err != nil || v == nil {
				return err
			}
			d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], v)
			if err != nil {
				return err
			}
			var e error
			if p.Prefix, e = ParsePrefix(string(d.scratch)); e != nil {
				return invalid(path()+".prefix", "%v", e)
			}
		case "origins":
			p.Origins, err = d.asnList(func() string { return path() + ".origins" })
		case "upstreams":
			p.Upstreams, err = d.asnList(func() string { return path() + ".upstreams" })
		case "evidence":
			p.Evidence, err = d.evidence(func() string { return path() + ".evidence" })
		default:
			err = d.dec.SkipValue()
		}
		return err
	})
	if err == nil && !p.Prefix.IsValid() {
		err = invalid(path()+".prefix", "invalid prefix %q", "")
	}
	return p, err
}

// cacheable bounds what is cached: short lists, and not too many.
func cacheable(n, entries int) bool { return n > 0 && n <= 8 && entries < 1<<14 }

// asnList reads an array of ASNs, sorted and without duplicates (as
// Normalize leaves it), shared with every equal list read before.
func (d *snapReader) asnList(path func() string) ([]uint32, error) {
	raw, err := d.dec.ReadValue()
	if err != nil || raw.Kind() == 'n' {
		return nil, err
	}
	if l, ok := d.asnCache[string(raw)]; ok {
		return l, nil
	}
	key := string(raw)
	var l []uint32
	err = d.decodeRaw(key, func() (err error) {
		l, err = d.readASNList(path)
		return err
	})
	if err != nil || l == nil {
		return nil, err
	}
	slices.Sort(l)
	l = slices.Clip(slices.Compact(l))
	if cacheable(len(l), len(d.asnCache)) {
		d.asnCache[key] = l
	}
	return l, nil
}

// evidence reads an array of evidence, normalized (as Normalize leaves
// it), shared with every equal list read before.
func (d *snapReader) evidence(path func() string) ([]Evidence, error) {
	raw, err := d.dec.ReadValue()
	if err != nil || raw.Kind() == 'n' {
		return nil, err
	}
	if l, ok := d.evCache[string(raw)]; ok {
		return l, nil
	}
	key := string(raw)
	var l []Evidence
	err = d.decodeRaw(key, func() (err error) {
		l, err = d.readEvidence(path)
		return err
	})
	if err != nil || l == nil {
		return nil, err
	}
	l = slices.Clip(utcEvidence(normalizeEvidence(l)))
	if cacheable(len(l), len(d.evCache)) {
		d.evCache[key] = l
	}
	return l, nil
}

// decodeRaw runs read on the value just read by the main decoder (raw
// its text), through the second decoder.
func (d *snapReader) decodeRaw(raw string, read func() error) error {
	base := d.main.InputOffset() - int64(len(raw))
	d.rawBuf = append(d.rawBuf[:0], raw...)
	d.subR.Reset(d.rawBuf)
	if d.sub == nil {
		d.sub = jsontext.NewDecoder(&d.subR)
	} else {
		d.sub.Reset(&d.subR)
	}
	d.dec, d.base = d.sub, base
	err := read()
	d.dec, d.base = d.main, 0
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		se.ByteOffset += base
	}
	return err
}

// readASNList reads an array of ASNs into the origins arena.
func (d *snapReader) readASNList(path func() string) ([]uint32, error) {
	if len(d.origins) > cap(d.origins)-64 {
		d.origins = make([]uint32, 0, 1<<16)
	}
	start := len(d.origins)
	err := d.array(path, func(i int) error {
		v, have, err := d.uint(func() string { return fmt.Sprintf("%s[%d]", path(), i) }, 1<<32-1)
		if err != nil || !have {
			if err == nil {
				err = d.bad(func() string { return fmt.Sprintf("%s[%d]", path(), i) }, "want an ASN, got null")
			}
			return err
		}
		a, e := checkASN(int64(v))
		if e != nil {
			return invalid(fmt.Sprintf("%s[%d]", path(), i), "%v", e)
		}
		d.origins = append(d.origins, a)
		return nil
	})
	if err != nil || len(d.origins) == start {
		return nil, err
	}
	// A list longer than the arena's room moved it: the slice stays valid.
	out := d.origins[start:len(d.origins):len(d.origins)]
	return out, nil
}

// readEvidence reads an array of evidence into the evidence arena.
func (d *snapReader) readEvidence(path func() string) ([]Evidence, error) {
	if len(d.ev) > cap(d.ev)-16 {
		d.ev = make([]Evidence, 0, 1<<15)
	}
	start := len(d.ev)
	err := d.array(path, func(i int) error {
		var e Evidence
		ep := func() string { return fmt.Sprintf("%s[%d]", path(), i) }
		err := d.object(ep, func(key []byte) (err error) {
			switch string(key) {
			case "source":
				e.Source, err = d.str(func() string { return ep() + ".source" }, true)
			case "detail":
				e.Detail, err = d.str(func() string { return ep() + ".detail" }, true)
			case "seen":
				e.Seen, _, err = d.time(func() string { return ep() + ".seen" })
			default:
				err = d.dec.SkipValue()
			}
			return err
		})
		if err == nil && e.Source == "" {
			err = invalid(ep()+".source", "missing")
		}
		d.ev = append(d.ev, e)
		return err
	})
	if err != nil || len(d.ev) == start {
		return nil, err
	}
	return d.ev[start:len(d.ev):len(d.ev)], nil
}

// strings reads an object whose members are strings into fields (by
// name); other members are skipped.
func (d *snapReader) strings(path func() string, fields map[string]*string) error {
	return d.object(path, func(key []byte) (err error) {
		dst, ok := fields[string(key)]
		if !ok {
			return d.dec.SkipValue()
		}
		name := string(key)
		*dst, err = d.str(func() string { return path() + "." + name }, false)
		return err
	})
}

// members reads the members of an object whose '{' was read.
func (d *snapReader) members(member func(key []byte) error) error {
	for {
		if d.dec.PeekKind() == '}' {
			_, err := d.dec.ReadToken()
			return err
		}
		// The name, without escapes: names are ASCII and compared raw
		// (a name with an escape is simply an unknown one).
		v, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		if err := member(v[1 : len(v)-1]); err != nil {
			return err
		}
	}
}

// object reads an object (null: none).
func (d *snapReader) object(path func() string, member func(key []byte) error) error {
	tok, err := d.dec.ReadToken()
	switch {
	case err != nil:
		return err
	case tok.Kind() == 'n':
		return nil
	case tok.Kind() != '{':
		return d.bad(path, "want an object, got %s", tok.Kind())
	}
	return d.members(member)
}

// array reads an array (null: none), calling elem for each element.
func (d *snapReader) array(path func() string, elem func(i int) error) error {
	tok, err := d.dec.ReadToken()
	switch {
	case err != nil:
		return err
	case tok.Kind() == 'n':
		return nil
	case tok.Kind() != '[':
		return d.bad(path, "want an array, got %s", tok.Kind())
	}
	for i := 0; ; i++ {
		if d.dec.PeekKind() == ']' {
			_, err := d.dec.ReadToken()
			return err
		}
		if err := elem(i); err != nil {
			return err
		}
	}
}

// value reads a scalar of the given kind (null: nil). The value is valid
// until the next read.
func (d *snapReader) value(path func() string, kind jsontext.Kind) (jsontext.Value, error) {
	v, err := d.dec.ReadValue()
	switch {
	case err != nil:
		return nil, err
	case v.Kind() == 'n':
		return nil, nil
	case v.Kind() != kind:
		return nil, d.bad(path, "want a %s, got %s", kind, v.Kind())
	}
	return v, nil
}

// str reads a string; intern shares equal strings.
func (d *snapReader) str(path func() string, intern bool) (string, error) {
	v, err := d.value(path, '"')
	if err != nil || v == nil {
		return "", err
	}
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], v)
	if err != nil {
		return "", err
	}
	if !intern {
		return string(d.scratch), nil
	}
	if s, ok := d.strs[string(d.scratch)]; ok {
		return s, nil
	}
	s := string(d.scratch)
	if len(d.strs) < 1<<14 {
		d.strs[s] = s
	}
	return s, nil
}

// uint reads a non-negative integer up to max; have is false for null.
func (d *snapReader) uint(path func() string, max uint64) (n uint64, have bool, err error) {
	v, err := d.value(path, '0')
	if err != nil || v == nil {
		return 0, false, err
	}
	for _, c := range v {
		if c < '0' || c > '9' || n > max {
			return 0, false, d.bad(path, "want an integer from 0 to %d, got %s", max, v)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > max {
		return 0, false, d.bad(path, "want an integer from 0 to %d, got %s", max, v)
	}
	return n, true, nil
}

func (d *snapReader) bool(path func() string) (bool, error) {
	tok, err := d.dec.ReadToken()
	switch {
	case err != nil:
		return false, err
	case tok.Kind() == 't':
		return true, nil
	case tok.Kind() == 'f', tok.Kind() == 'n':
		return false, nil
	}
	return false, d.bad(path, "want true or false, got %s", tok.Kind())
}

// time reads an RFC 3339 time; ok is false for null.
func (d *snapReader) time(path func() string) (t time.Time, ok bool, err error) {
	v, err := d.value(path, '"')
	if err != nil || v == nil {
		return time.Time{}, false, err
	}
	if d.seenRaw != nil && bytes.Equal(v, d.seenRaw) {
		return d.seen, true, nil
	}
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], v)
	if err != nil {
		return time.Time{}, false, err
	}
	t, e := time.Parse(time.RFC3339Nano, string(d.scratch))
	if e != nil {
		return time.Time{}, false, d.bad(path, "want an RFC 3339 time, got %s", v)
	}
	d.seenRaw, d.seen = append(d.seenRaw[:0], v...), t
	return t, true, nil
}

// checkASN accepts a real origin ASN.
func checkASN(v int64) (uint32, error) {
	if v <= 0 || v > 4294967295 {
		return 0, fmt.Errorf("ASN %d out of range 1-4294967295", v)
	}
	if v == 23456 {
		return 0, fmt.Errorf("ASN 23456 is AS_TRANS, not a real origin")
	}
	return uint32(v), nil
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
