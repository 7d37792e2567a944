// Package irr reads Internet Routing Registry data: RPSL objects from files
// (parser and index), and IRRd servers over the IRRd whois protocol (a
// pipelined client). Both answer the resolver's questions: which ASNs an
// AS-SET holds, and which route/route6 prefixes an ASN originates.
package irr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// Key is the value of the first attribute.
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

// ParseRPSL reads RPSL objects from r and calls fn for each one, in file
// order. name is the file name used in errors. Lines starting with '#' or
// '%' are comments; '#' also starts a comment inside a value. A line
// starting with a space, a tab or '+' continues the previous attribute.
// Objects are separated by blank (or whitespace-only) lines.
func ParseRPSL(name string, r io.Reader, fn func(*Object) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	p := &parser{name: name}
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF && line == nil {
			return p.emit(fn)
		}
		if err != nil && err != io.EOF {
			if errors.Is(err, errLineTooLong) {
				return &ParseError{name, n, fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
			}
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if perr := p.line(n, line, fn); perr != nil {
			return perr
		}
		if err == io.EOF {
			return p.emit(fn)
		}
	}
}

// parser holds the object being read. Continuation lines are collected
// and joined once per attribute: appending to a string per line would be
// quadratic in the number of lines.
type parser struct {
	name string
	cur  *Object
	more []string // continuation lines of the last attribute
}

func (p *parser) finishAttr() {
	if p.cur == nil || len(p.more) == 0 {
		return
	}
	a := &p.cur.Attrs[len(p.cur.Attrs)-1]
	parts := p.more
	if a.Value != "" {
		parts = append([]string{a.Value}, parts...)
	}
	a.Value = strings.Join(parts, "\n")
	if len(p.cur.Attrs) == 1 {
		p.cur.Key = firstLine(a.Value)
	}
	p.more = p.more[:0]
}

func (p *parser) emit(fn func(*Object) error) error {
	p.finishAttr()
	if p.cur == nil {
		return nil
	}
	o := p.cur
	p.cur = nil
	return fn(o)
}

func (p *parser) line(n int, line []byte, fn func(*Object) error) error {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(bytes.TrimSpace(line)) == 0 {
		return p.emit(fn)
	}
	switch line[0] {
	case '#', '%':
		return nil
	case ' ', '\t', '+':
		if p.cur == nil {
			return &ParseError{p.name, n, "continuation line outside an object"}
		}
		if v := cleanValue(line[1:]); v != "" {
			p.more = append(p.more, v)
		}
		return nil
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return &ParseError{p.name, n, fmt.Sprintf("want \"attribute: value\", got %q", clip(line))}
	}
	attr := line[:colon]
	for _, c := range attr {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return &ParseError{p.name, n, fmt.Sprintf("invalid attribute name %q", clip(attr))}
		}
	}
	p.finishAttr()
	a := Attr{Name: strings.ToLower(string(attr)), Value: cleanValue(line[colon+1:]), Line: n}
	if p.cur == nil {
		p.cur = &Object{Class: a.Name, Key: firstLine(a.Value), File: p.name, Line: n}
	}
	p.cur.Attrs = append(p.cur.Attrs, a)
	return nil
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
	return bytes.TrimSuffix(line, []byte{'\n'}), err
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

// splitList splits a members-style value on commas and white space.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}
