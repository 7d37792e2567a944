// Package check collects configuration problems by field path, so that the
// config loader can report each one with the file and line it came from.
package check

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one invalid field. Path uses YAML keys and list indexes, e.g.
// "bgp.neighbors[2].asn".
type Problem struct {
	Path string
	Msg  string
}

// Problems accumulates what is wrong; the zero value is ready to use.
type Problems struct {
	list []Problem
}

// Add records a problem at path.
func (p *Problems) Add(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// List returns the problems in the order they were added.
func (p *Problems) List() []Problem { return p.list }

// Empty reports whether nothing was added.
func (p *Problems) Empty() bool { return len(p.list) == 0 }

// Join builds a child path: Join("bgp", "neighbors", 2, "asn") = "bgp.neighbors[2].asn".
func Join(parts ...any) string {
	var b strings.Builder
	for _, x := range parts {
		switch v := x.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if v == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		default:
			panic(fmt.Sprintf("check.Join: unsupported part %T", x)) // programming error, never input
		}
	}
	return b.String()
}

// Error is a set of problems as one error (for callers without line info).
type Error []Problem

func (e Error) Error() string {
	s := make([]string, len(e))
	for i, p := range e {
		s[i] = p.Path + ": " + p.Msg
	}
	sort.Strings(s)
	return strings.Join(s, "; ")
}
