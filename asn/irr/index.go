package irr

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/asfence/asfence/asn/rpsl"
)

// Index holds what the resolver needs from RPSL objects: as-set members,
// route/route6 prefixes by origin, and aut-num names, each with the source
// (database) of the object. It is read-only once built: safe for concurrent use.
type Index struct {
	sets    map[string][]SetObject
	routes  map[uint32][]Route
	autnums map[uint32][]AutNum
	counts  map[string]int
	sources []string
	seen    map[Route]struct{} // de-duplicates routes while building
}

// SetObject is one as-set.
type SetObject struct {
	Name string
	// Members are upper-cased, from members: and mp-members:, in order.
	Members []string
	Source  string
	File    string
	Line    int
}

// Route is one route or route6 object.
type Route struct {
	Prefix netip.Prefix
	Origin uint32
	Source string
}

// AutNum is the name part of an aut-num object.
type AutNum struct {
	ASN    uint32
	Name   string
	Source string
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{sets: map[string][]SetObject{}, routes: map[uint32][]Route{}, autnums: map[uint32][]AutNum{}, counts: map[string]int{}, seen: map[Route]struct{}{}}
}

// LoadFiles parses RPSL files into a new index.
func LoadFiles(paths ...string) (*Index, error) {
	x := NewIndex()
	for _, p := range paths {
		if err := x.AddFile(p); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// AddFile parses one RPSL file into the index.
func (x *Index) AddFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return x.AddRPSL(path, f)
}

// AddRPSL parses RPSL text into the index; name is used in errors.
func (x *Index) AddRPSL(name string, r io.Reader) error {
	return rpsl.Parse(name, r, x.Add)
}

// Add indexes one object. route, route6, as-set and aut-num objects are
// checked (key syntax, origin, source); other classes are only counted.
func (x *Index) Add(o *rpsl.Object) error {
	bad := func(line int, format string, args ...any) error {
		return &rpsl.ParseError{File: o.File, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	x.counts[o.Class]++
	switch o.Class {
	case "route", "route6", "as-set", "aut-num":
	default:
		return nil
	}
	src := o.Source()
	if src == "" {
		return bad(o.Line, "%s %s has no source: attribute", o.Class, o.Key)
	}
	if strings.ContainsAny(src, " ,!") {
		return bad(o.Line, "%s %s: invalid source %q", o.Class, o.Key, src)
	}
	if !slices.Contains(x.sources, src) {
		x.sources = append(x.sources, src)
	}
	switch o.Class {
	case "route", "route6":
		p, err := netip.ParsePrefix(strings.TrimSpace(o.Key))
		if err != nil || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			return bad(o.Line, "%s: invalid prefix %q", o.Class, o.Key)
		}
		if p.Addr().Is4() != (o.Class == "route") {
			return bad(o.Line, "%s: %s is the wrong address family", o.Class, p)
		}
		ov, ok := o.Get("origin")
		if !ok {
			return bad(o.Line, "%s %s has no origin: attribute", o.Class, p)
		}
		origin, err := rpsl.ParseASN(ov)
		if err != nil {
			return bad(o.AttrLine("origin"), "%s %s: origin: %v", o.Class, p, err)
		}
		r := Route{Prefix: p, Origin: origin, Source: src}
		if _, dup := x.seen[r]; !dup {
			x.seen[r] = struct{}{}
			x.routes[origin] = append(x.routes[origin], r)
		}
	case "as-set":
		name := strings.ToUpper(strings.TrimSpace(o.Key))
		if !validSetName(name) {
			return bad(o.Line, "as-set: invalid name %q", o.Key)
		}
		s := SetObject{Name: name, Source: src, File: o.File, Line: o.Line, Members: []string{}}
		for _, a := range o.Attrs {
			if a.Name == "members" || a.Name == "mp-members" {
				for _, m := range rpsl.SplitList(a.Value) {
					s.Members = append(s.Members, strings.ToUpper(m))
				}
			}
		}
		for _, prev := range x.sets[name] {
			if prev.Source == src {
				return bad(o.Line, "as-set %s is defined twice in source %s (first at %s:%d)", name, src, prev.File, prev.Line)
			}
		}
		x.sets[name] = append(x.sets[name], s)
	case "aut-num":
		a, err := rpsl.ParseASN(o.Key)
		if err != nil {
			return bad(o.Line, "aut-num: %v", err)
		}
		name, _ := o.Get("as-name")
		x.autnums[a] = append(x.autnums[a], AutNum{ASN: a, Name: firstLine(name), Source: src})
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Sources lists the sources seen, in order of first appearance.
func (x *Index) Sources() []string { return slices.Clone(x.sources) }

// Count returns how many objects of a class were read.
func (x *Index) Count(class string) int { return x.counts[class] }

// HasSource reports whether any indexed object has this source.
func (x *Index) HasSource(src string) bool { return slices.Contains(x.sources, strings.ToUpper(src)) }

// Set returns the as-set with this name from the first source in sources
// that has it (any source, in file order, when sources is empty).
func (x *Index) Set(name string, sources []string) (SetObject, bool) {
	list := x.sets[strings.ToUpper(name)]
	if len(sources) == 0 {
		if len(list) == 0 {
			return SetObject{}, false
		}
		return list[0], true
	}
	for _, src := range sources {
		for _, s := range list {
			if s.Source == src {
				return s, true
			}
		}
	}
	return SetObject{}, false
}

// Routes returns the route (v6 false) or route6 objects originated by asn
// in the given sources (all when empty), in file order.
func (x *Index) Routes(asn uint32, v6 bool, sources []string) []Route {
	var out []Route
	for _, r := range x.routes[asn] {
		if r.Prefix.Addr().Is6() != v6 {
			continue
		}
		if len(sources) > 0 && !slices.Contains(sources, r.Source) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// AutNums returns the aut-num objects for asn in the given sources (all
// when empty).
func (x *Index) AutNums(asn uint32, sources []string) []AutNum {
	var out []AutNum
	for _, a := range x.autnums[asn] {
		if len(sources) == 0 || slices.Contains(sources, a.Source) {
			out = append(out, a)
		}
	}
	return out
}

// SpecialASN reports whether an ASN is private, reserved or for
// documentation (RFC 6996, RFC 5398, RFC 7300, AS_TRANS, AS0). Such members
// of an AS-SET are skipped, as bgpq4 skips them: they never identify a
// real network.
func SpecialASN(a uint32) bool {
	return a == 0 || a == 23456 || a >= 64496 && a <= 65551 || a >= 4200000000
}

// validSetName checks as-set syntax: AS-NAME, with hierarchical parts
// separated by ':' (AS123:AS-FOO, AS-FOO:AS-BAR).
func validSetName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	hasSet := false
	for _, part := range strings.Split(s, ":") {
		if part == "" {
			return false
		}
		if strings.HasPrefix(part, "AS-") && len(part) > 3 {
			for _, c := range part[3:] {
				if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return false
				}
			}
			hasSet = true
			continue
		}
		if _, err := rpsl.ParseASN(part); err != nil || !strings.HasPrefix(part, "AS") {
			return false
		}
	}
	return hasSet
}
