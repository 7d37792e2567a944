package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/asfence/asfence/field"
)

// A shape check walks the YAML tree along the Go type it is decoded into,
// before decoding, and reports in the operator's words, with the field path
// and line, every key the type does not have, every key set twice and
// every value of the wrong kind. It then cuts those out of the tree, so
// that the decode that follows sets every other field and their range
// checks are reported in the same pass.

// problem is one error in the file; line 0 means: look the path up, -1:
// the line is not known.
type problem struct {
	path string
	pos
	msg string
}

type visit struct {
	n *yaml.Node
	t reflect.Type
}

type shapeCheck struct {
	problems []problem
	// bad holds the paths of values cut out: their zero value is not the
	// operator's, so range checks on them are not reported.
	bad map[string]bool
	// done: an anchored node is checked once per type (an alias repeated
	// many times, or one that refers to itself, costs nothing more).
	done map[visit]bool
}

func newShapeCheck() *shapeCheck {
	return &shapeCheck{bad: map[string]bool{}, done: map[visit]bool{}}
}

func (c *shapeCheck) add(path string, n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, problem{path: path, pos: pos{n.Line, n.Column}, msg: fmt.Sprintf(format, args...)})
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	timeType      = reflect.TypeFor[time.Time]()
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshal = reflect.TypeFor[yaml.Unmarshaler]()
)

// value checks n against t and reports whether n may stay in the tree.
func (c *shapeCheck) value(path string, n *yaml.Node, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	target := n
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			c.add(path, n, "unknown alias *%s", n.Value)
			c.bad[path] = true
			return false
		}
		target = n.Alias
	}
	if target.Kind == yaml.ScalarNode && target.ShortTag() == "!!null" {
		return true // null leaves the default
	}
	v := visit{target, t}
	if ok, seen := c.done[v]; seen {
		if !ok {
			c.bad[path] = true // reported where the anchor was first used
		}
		return ok
	}
	c.done[v] = true // a node that contains itself is reported by its leaves
	ok := c.shape(path, n, target, t)
	c.done[v] = ok
	if !ok {
		c.bad[path] = true
	}
	return ok
}

func (c *shapeCheck) shape(path string, n, target *yaml.Node, t reflect.Type) bool {
	if leafType(t) {
		return c.leaf(path, n, target, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		if target.Kind != yaml.MappingNode {
			c.wrongKind(path, n, target, t)
			return false
		}
		c.mapping(path, target, structKeys(t), nil)
		return true
	case reflect.Map:
		if target.Kind != yaml.MappingNode {
			c.wrongKind(path, n, target, t)
			return false
		}
		c.mapping(path, target, nil, t)
		return true
	case reflect.Slice, reflect.Array:
		if target.Kind != yaml.SequenceNode {
			c.wrongKind(path, n, target, t)
			return false
		}
		for i, el := range target.Content {
			if !c.value(field.Path(path, i), el, t.Elem()) {
				// Keep the indexes of the elements after it.
				target.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: el.Line, Column: el.Column}
			}
		}
		return true
	case reflect.Interface:
		return true
	}
	return c.leaf(path, n, target, t)
}

// leafType: decoded from one scalar.
func leafType(t reflect.Type) bool {
	if t == durationType || t == timeType {
		return true
	}
	p := reflect.PointerTo(t)
	return p.Implements(textUnmarshal) || p.Implements(yamlUnmarshal)
}

// leaf checks a scalar by decoding it the way the full decode will.
func (c *shapeCheck) leaf(path string, n, target *yaml.Node, t reflect.Type) bool {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil && target.Kind == yaml.ScalarNode && target.ShortTag() == "!!float" && isInteger(t) {
		err = fmt.Errorf("not a whole number") // yaml.v3 would cut 1.5 to 1
	}
	if err != nil {
		c.wrongKind(path, n, target, t)
		return false
	}
	return true
}

func (c *shapeCheck) wrongKind(path string, n, target *yaml.Node, t reflect.Type) {
	c.add(path, n, "want %s, got %s", want(t), describe(target))
}

// fieldKey is a struct field as a YAML key.
type fieldKey struct {
	name string
	typ  reflect.Type
}

// structKeys lists the keys of a struct as yaml.v3 names them (inline
// structs included), in declaration order.
func structKeys(t reflect.Type) []fieldKey {
	var out []fieldKey
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		if slices.Contains(parts[1:], "inline") && f.Type.Kind() == reflect.Struct {
			out = append(out, structKeys(f.Type)...)
			continue
		}
		name := parts[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldKey{name, f.Type})
	}
	return out
}

// maxKeyShown: a longer unknown key is cut in messages.
const maxKeyShown = 64

// mapping checks the pairs of a mapping node against the keys of a struct
// (keys != nil) or a map type, and cuts out the pairs that are wrong.
func (c *shapeCheck) mapping(path string, n *yaml.Node, keys []fieldKey, mapType reflect.Type) {
	first := map[string]int{}
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			if c.merge(path, k, v, keys, mapType) {
				kept = append(kept, k, v)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.add(path, k, "a key must be a plain name, got %s", describe(k))
			continue
		}
		p := field.Path(path, k.Value)
		if l, dup := first[k.Value]; dup {
			c.add(p, k, "set twice (first at line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		var vt reflect.Type
		if mapType != nil {
			if !c.value(p, k, mapType.Key()) {
				continue
			}
			vt = mapType.Elem()
		} else {
			i := slices.IndexFunc(keys, func(f fieldKey) bool { return f.name == k.Value })
			if i < 0 {
				if len(k.Value) > maxKeyShown {
					p = field.Path(path, k.Value[:maxKeyShown]+"...")
				}
				c.add(p, k, "unknown key%s", suggest(k.Value, keys))
				continue
			}
			vt = keys[i].typ
		}
		if c.value(p, v, vt) {
			kept = append(kept, k, v)
		}
	}
	n.Content = kept
}

// merge checks a "<<: *anchor" merge key: its mappings are checked as
// part of the mapping that merges them.
func (c *shapeCheck) merge(path string, k, v *yaml.Node, keys []fieldKey, mapType reflect.Type) bool {
	srcs := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	}
	for _, s := range srcs {
		m := s
		if s.Kind == yaml.AliasNode {
			m = s.Alias
		}
		if m == nil || m.Kind != yaml.MappingNode {
			c.add(path, k, "<< merges a mapping or a list of mappings, got %s", describe(s))
			return false
		}
	}
	for _, s := range srcs {
		m := s
		if s.Kind == yaml.AliasNode {
			m = s.Alias
		}
		vis := visit{m, reflect.TypeFor[mergeMarker]()}
		if c.done[vis] {
			continue
		}
		c.done[vis] = true
		c.mapping(path, m, keys, mapType)
	}
	return true
}

// mergeMarker keys the done set for mappings checked as merge sources.
type mergeMarker struct{}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

// suggest names the nearest known key to a typo, or lists the known keys.
func suggest(key string, keys []fieldKey) string {
	if len(keys) == 0 {
		return " (this block takes no keys)"
	}
	limit := max(1, (len(key)+1)/3)
	best, bestD := "", math.MaxInt
	for _, f := range keys {
		if abs(len(key)-len(f.name)) > limit {
			continue // farther than limit: not worth the quadratic distance
		}
		if d := editDistance(strings.ToLower(key), f.name); d < bestD {
			best, bestD = f.name, d
		}
	}
	if bestD <= limit {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	names := make([]string, len(keys))
	for i, f := range keys {
		names[i] = f.name
	}
	return fmt.Sprintf(" (known keys here: %s)", strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (config keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return t != durationType
	}
	return false
}

// want says what a value of type t looks like in the file.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 90s, 5m or 6h"
	case t == timeType:
		return "a date such as 2024-05-01 or 2024-05-01T12:00:00Z"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a single value"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		hi := int64(1)<<(t.Bits()-1) - 1
		return fmt.Sprintf("a whole number from %d to %d", -hi-1, hi)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a mapping (key: value lines)"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "a " + t.String()
}

// describe says what a node is, for "got ...".
func describe(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
