// Package rpsl reads RPSL (RFC 2622) object text as the registries publish
// it: IRR files, RIR whois database dumps and whois answers. A Reader
// streams one object at a time, so a dump of millions of objects is read
// in bounded memory; it can skip the classes and attributes a caller does
// not need without building them.
package rpsl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxLineBytes bounds one RPSL line; longer lines are an error, not a
// silent truncation.
const MaxLineBytes = 1 << 20

// Object is one RPSL object: the attributes between two blank lines. The
// first attribute names the class and holds the primary key.
type Object struct {
	// Class is the lower-cased name of the first attribute (route, as-set...).
	Class string
	// Key is the first line of the first attribute's value.
	Key   string
	Attrs []Attr
	// File and Line locate the first attribute.
	File string
	Line int
}

// Attr is one attribute. Continuation lines are joined with "\n";
// comments are removed and each line is trimmed.
type Attr struct {
	// Name is lower-cased.
	Name  string
	Value string
	Line  int
}

// Get returns the value of the first attribute with the (lower-case) name.
func (o *Object) Get(name string) (string, bool) {
	for _, a := range o.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// Values returns the values of every attribute with the (lower-case) name,
// in order.
func (o *Object) Values(name string) []string {
	var out []string
	for _, a := range o.Attrs {
		if a.Name == name {
			out = append(out, a.Value)
		}
	}
	return out
}

// AttrLine returns the line of the first attribute with the name, or the
// object's line when it has none.
func (o *Object) AttrLine(name string) int {
	for _, a := range o.Attrs {
		if a.Name == name {
			return a.Line
		}
	}
	return o.Line
}

// Source is the upper-cased value of the source: attribute ("" if none).
func (o *Object) Source() string {
	s, _ := o.Get("source")
	return strings.ToUpper(strings.TrimSpace(s))
}

// ParseError locates a syntax or content error in an RPSL file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads RPSL objects from r and calls fn for each one, in file
// order; an error from fn stops it. name is the file name used in errors.
// See Reader for the syntax accepted.
func Parse(name string, r io.Reader, fn func(*Object) error) error {
	rd := NewReader(r, name)
	for {
		o, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
	}
}

// Reader reads RPSL objects one at a time. Lines starting with '#' or '%'
// are comments; '#' also starts a comment inside a value. A line starting
// with a space, a tab or '+' continues the previous attribute. Objects are
// separated by blank (or whitespace-only) lines. Every line is checked,
// including those of objects that are skipped.
type Reader struct {
	name    string
	br      *bufio.Reader
	line    int
	classes []string // nil: every class
	attrs   []string // nil: every attribute

	cur      *Object
	skipping bool     // inside an object of a class not asked for
	keepAttr bool     // the last attribute line is kept (its continuations too)
	more     []string // continuation lines of the last kept attribute
	lower    []byte
	eof      bool
	reuse    bool
	spare    *Object
}

// NewReader returns a Reader of r; name is the file name used in errors
// and in each Object's File.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Classes restricts Next to objects of the given (lower-case) classes; the
// others are checked line by line but not built.
func (r *Reader) Classes(names ...string) {
	r.classes = append([]string{}, names...)
}

// Attributes restricts the attributes kept in each object to the given
// (lower-case) names; the first attribute (class and key) is always kept.
func (r *Reader) Attributes(names ...string) {
	r.attrs = append([]string{}, names...)
}

// lookup returns the element of names equal to b (a short list: a linear
// search beats hashing every line).
func lookup(names []string, b []byte) (string, bool) {
	for _, n := range names {
		if len(n) == len(b) && n == string(b) {
			return n, true
		}
	}
	return "", false
}

// Reuse makes Next return the same Object (and attribute array) each
// time: an object is then valid only until the next call. For callers that
// look at each object and keep nothing of it but strings.
func (r *Reader) Reuse() { r.reuse = true }

// Line is the number of lines read so far.
func (r *Reader) Line() int { return r.line }

// Next returns the next object, or io.EOF after the last one. A syntax
// error is a *ParseError; a read error (e.g. a damaged compressed stream)
// is returned wrapped with the file name and line.
func (r *Reader) Next() (*Object, error) {
	for {
		if r.eof {
			if o := r.finish(); o != nil {
				return o, nil
			}
			return nil, io.EOF
		}
		line, err := readLine(r.br)
		if err == io.EOF && line == nil {
			r.eof = true
			continue
		}
		r.line++
		if err != nil && err != io.EOF {
			if errors.Is(err, errLineTooLong) {
				return nil, &ParseError{r.name, r.line, fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
			}
			return nil, fmt.Errorf("%s:%d: %w", r.name, r.line, err)
		}
		r.eof = err == io.EOF
		o, perr := r.handle(line)
		if perr != nil {
			return nil, perr
		}
		if o != nil {
			return o, nil
		}
	}
}

// handle processes one line; it returns an object when the line ends one.
func (r *Reader) handle(line []byte) (*Object, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return r.finish(), nil
	}
	switch line[0] {
	case '#', '%':
		return nil, nil
	case ' ', '\t', '+':
		if r.cur == nil && !r.skipping {
			return nil, &ParseError{r.name, r.line, "continuation line outside an object"}
		}
		if r.keepAttr {
			if v := cleanValue(line[1:]); v != "" {
				r.more = append(r.more, v)
			}
		}
		return nil, nil
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, &ParseError{r.name, r.line, fmt.Sprintf("want \"attribute: value\", got %q", clip(line))}
	}
	attr := line[:colon]
	upper := false
	for _, c := range attr {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, &ParseError{r.name, r.line, fmt.Sprintf("invalid attribute name %q", clip(attr))}
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if upper {
		r.lower = append(r.lower[:0], attr...)
		for i, c := range r.lower {
			if c >= 'A' && c <= 'Z' {
				r.lower[i] = c + 'a' - 'A'
			}
		}
		attr = r.lower
	}
	r.finishAttr()
	first := r.cur == nil && !r.skipping
	if first && r.classes != nil {
		if _, ok := lookup(r.classes, attr); !ok {
			r.skipping, r.keepAttr = true, false
			return nil, nil
		}
	}
	if r.skipping {
		return nil, nil
	}
	var name string
	switch {
	case first || r.attrs == nil:
		name = string(attr)
	default:
		n, ok := lookup(r.attrs, attr)
		if !ok {
			r.keepAttr = false
			return nil, nil
		}
		name = n
	}
	a := Attr{Name: name, Value: cleanValue(line[colon+1:]), Line: r.line}
	if first {
		r.cur = r.newObject()
		r.cur.Class, r.cur.Key, r.cur.File, r.cur.Line = a.Name, firstLine(a.Value), r.name, r.line
	}
	r.cur.Attrs = append(r.cur.Attrs, a)
	r.keepAttr = true
	return nil, nil
}

func (r *Reader) newObject() *Object {
	if !r.reuse {
		return &Object{Attrs: make([]Attr, 0, 16)}
	}
	if r.spare == nil {
		r.spare = &Object{Attrs: make([]Attr, 0, 16)}
	}
	o := r.spare
	*o = Object{Attrs: o.Attrs[:0]}
	return o
}

// finishAttr joins the continuation lines of the last kept attribute.
// They are collected and joined once per attribute: appending to a string
// per line would be quadratic in the number of lines.
func (r *Reader) finishAttr() {
	if r.cur == nil || len(r.more) == 0 {
		r.more = r.more[:0]
		return
	}
	a := &r.cur.Attrs[len(r.cur.Attrs)-1]
	parts := r.more
	if a.Value != "" {
		parts = append([]string{a.Value}, parts...)
	}
	a.Value = strings.Join(parts, "\n")
	if len(r.cur.Attrs) == 1 {
		r.cur.Key = firstLine(a.Value)
	}
	r.more = r.more[:0]
}

// finish ends the current object and returns it (nil if it was skipped or
// there was none).
func (r *Reader) finish() *Object {
	r.finishAttr()
	r.skipping, r.keepAttr = false, false
	o := r.cur
	r.cur = nil
	return o
}

var errLineTooLong = errors.New("line too long")

// readLine returns one line without its '\n'; at the end of the input it
// returns the last (unterminated) line with io.EOF, or nil and io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
			if len(long) > MaxLineBytes {
				return nil, errLineTooLong
			}
		}
		line = long
	}
	if err == io.EOF && len(line) == 0 {
		return nil, io.EOF
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if len(line) > MaxLineBytes {
		return nil, errLineTooLong
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, err
}

// cleanValue removes a '#' comment and surrounding white space.
func cleanValue(b []byte) string {
	if i := bytes.IndexByte(b, '#'); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimSpace(b))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// SplitList splits a members-style value on commas and white space.
func SplitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// ParseASN parses "AS123", "as123", "123" or asdot "AS1.10".
func ParseASN(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	v := s
	if len(v) >= 2 && (v[0] == 'A' || v[0] == 'a') && (v[1] == 'S' || v[1] == 's') {
		v = v[2:]
	}
	if hi, lo, ok := strings.Cut(v, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("invalid AS number %q", s)
		}
		return uint32(h)<<16 | uint32(l), nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || v == "" || v[0] == '+' {
		return 0, fmt.Errorf("invalid AS number %q", s)
	}
	return uint32(n), nil
}
