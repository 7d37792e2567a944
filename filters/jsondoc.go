package filters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// The document of the json vendor. templates/json.tmpl lays it out:
// indented, except that the elements of the long lists (prefixes with
// their evidence, route-filter entries, coverage) are written one per
// line, so diffs of the document stay readable. encoding/json writes
// every value.

// jsonList is a list of the document. Its methods write it as a JSON
// array for the template, element by element (a list can hold a million
// prefixes: one template action per list, not per element).
type jsonList[T any] []T

// Lines returns the list with one compact element per line, indented by
// indent spaces (the closing bracket by indent-2). The embedded template
// writes it straight to the output with the function lines instead.
func (l jsonList[T]) Lines(indent int) (string, error) { return l.text(indent, false) }

// Objects returns the list with each element indented as an object of
// its own, starting indent spaces in (the closing bracket indent-2); the
// function objects writes it straight to the output.
func (l jsonList[T]) Objects(indent int) (string, error) { return l.text(indent, true) }

func (l jsonList[T]) text(indent int, objects bool) (string, error) {
	var out strings.Builder
	if err := l.writeList(&out, indent, objects); err != nil {
		return "", err
	}
	return out.String(), nil
}

// jsonWriterList is a jsonList of any element type.
type jsonWriterList interface {
	writeList(w io.Writer, indent int, objects bool) error
	text(indent int, objects bool) (string, error)
}

// writeList writes the list as Lines (objects false) or Objects do,
// element by element.
func (l jsonList[T]) writeList(w io.Writer, indent int, objects bool) error {
	if len(l) == 0 {
		_, err := io.WriteString(w, "[]")
		return err
	}
	if indent < 2 {
		return fmt.Errorf("json list indent %d: at least 2", indent)
	}
	pad := "\n" + strings.Repeat(" ", indent)
	var elem bytes.Buffer
	enc := newJSONEncoder(&elem)
	if objects {
		enc.SetIndent(pad[1:], "  ")
	}
	// Prefixes, ranges and prefixes with evidence (millions of them) are
	// written directly, as encoding/json writes them (asn.PrefixWriter
	// declines a prefix it would write otherwise); everything else by
	// encoding/json.
	var direct func(b []byte, i int) []byte
	var directErr error
	switch l := any(l).(type) {
	case jsonList[netip.Prefix]:
		direct = func(b []byte, i int) []byte { return appendJSONPrefix(b, l[i]) }
	case jsonList[asn.Prefix]:
		var pw asn.PrefixWriter
		direct = func(b []byte, i int) []byte {
			b, ok := pw.Append(b, l[i])
			if !ok {
				elem.Reset()
				if err := enc.Encode(&l[i]); err != nil {
					directErr = err
					return b
				}
				b = append(b, elem.Bytes()[:elem.Len()-1]...)
			}
			return b
		}
	case jsonList[jsonRange]:
		direct = func(b []byte, i int) []byte {
			b = append(b, `{"prefix":`...)
			b = appendJSONPrefix(b, l[i].Prefix)
			b = append(b, `,"ge":`...)
			b = strconv.AppendInt(b, int64(l[i].Ge), 10)
			b = append(b, `,"le":`...)
			b = strconv.AppendInt(b, int64(l[i].Le), 10)
			return append(b, '}')
		}
	}
	if objects {
		direct = nil
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, '[')
	for i := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, pad...)
		if direct != nil {
			if b = direct(b, i); directErr != nil {
				return directErr
			}
		} else {
			elem.Reset()
			if err := enc.Encode(&l[i]); err != nil { // a pointer: no allocation per element
				return err
			}
			b = append(b, elem.Bytes()[:elem.Len()-1]...) // without the encoder's newline
		}
		if len(b) >= 32<<10 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, pad[:len(pad)-2]...)
	b = append(b, ']')
	_, err := w.Write(b)
	return err
}

// appendJSONPrefix writes a prefix as encoding/json does (its text form,
// quoted; it has nothing to escape; the zero Prefix is "").
func appendJSONPrefix(b []byte, p netip.Prefix) []byte {
	b = append(b, '"')
	if !p.IsValid() {
		return append(b, '"')
	}
	b = p.AppendTo(b)
	return append(b, '"')
}

// jsonRange is a Range in the json output.
type jsonRange struct {
	Prefix netip.Prefix `json:"prefix"`
	Ge     int          `json:"ge"`
	Le     int          `json:"le"`
}

type jsonFamilies[T any] struct {
	IPv4 jsonList[T] `json:"ipv4"`
	IPv6 jsonList[T] `json:"ipv6"`
}

type jsonTarget struct {
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	ASNs        jsonList[uint32]           `json:"asns"`
	Prefixes    jsonList[asn.Prefix]       `json:"prefixes"`
	RouteFilter jsonFamilies[jsonRange]    `json:"route_filter"`
	Coverage    jsonFamilies[netip.Prefix] `json:"coverage"`
}

type jsonAll struct {
	ASNs        jsonList[uint32]           `json:"asns"`
	RouteFilter jsonFamilies[jsonRange]    `json:"route_filter"`
	Coverage    jsonFamilies[netip.Prefix] `json:"coverage"`
}

type jsonRFOptions struct {
	MoreSpecifics bool `json:"more_specifics"`
	MaxLength4    int  `json:"max_length_ipv4"`
	MaxLength6    int  `json:"max_length_ipv6"`
}

type jsonDoc struct {
	Generator    string                   `json:"generator"`
	Header       jsonList[string]         `json:"header"`
	SnapshotTime time.Time                `json:"snapshot_time"`
	Regenerate   string                   `json:"regenerate"`
	RouteFilter  jsonRFOptions            `json:"route_filter_options"`
	Lists        jsonList[ListCount]      `json:"lists"`
	Incomplete   jsonList[asn.Incomplete] `json:"incomplete"`
	Targets      []jsonTarget             `json:"targets"`
	All          jsonAll                  `json:"all"`
	Dropped      jsonList[policy.Drop]    `json:"dropped"`
	DropCounts   map[string]int           `json:"drop_counts"`
}

func jsonRanges(rs []prefixset.Range) []jsonRange {
	out := make([]jsonRange, len(rs))
	for i, r := range rs {
		out[i] = jsonRange{r.Prefix, r.Ge, r.Le}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (p *Prepared) jsonDoc(o RenderOptions, lists []ListCount) *jsonDoc {
	in := p.in
	d := &jsonDoc{
		Generator:    strings.TrimSpace("asfence " + o.Version),
		Header:       p.header(o, lists),
		SnapshotTime: in.SnapshotTime.UTC(),
		Regenerate:   o.Regenerate,
		RouteFilter: jsonRFOptions{in.RouteFilter.OrLonger,
			capLen(in.RouteFilter.MaxLength4, 32), capLen(in.RouteFilter.MaxLength6, 128)},
		Lists:      lists,
		Incomplete: nonNil(in.Incomplete),
		Dropped:    nonNil(in.Dropped),
		DropCounts: policy.DropCounts(in.Dropped),
		All: jsonAll{
			ASNs:        nonNil(p.asns),
			RouteFilter: jsonFamilies[jsonRange]{nonNil(jsonRanges(p.v4)), nonNil(jsonRanges(p.v6))},
			Coverage:    jsonFamilies[netip.Prefix]{nonNil(p.cov4), nonNil(p.cov6)},
		},
		Targets: []jsonTarget{},
	}
	for _, t := range in.Targets {
		jt := jsonTarget{
			Name: t.Name, Description: t.Description,
			ASNs: nonNil(t.ASNs), Prefixes: nonNil(t.Prefixes),
			RouteFilter: d.All.RouteFilter, Coverage: d.All.Coverage, // one target: its lists are all lists
		}
		if len(in.Targets) > 1 {
			jt.RouteFilter = jsonFamilies[jsonRange]{
				nonNil(jsonRanges(in.RouteFilterEntries(t.Name, prefixset.IPv4))),
				nonNil(jsonRanges(in.RouteFilterEntries(t.Name, prefixset.IPv6)))}
			jt.Coverage = jsonFamilies[netip.Prefix]{nonNil(in.Coverage(t.Name, prefixset.IPv4)), nonNil(in.Coverage(t.Name, prefixset.IPv6))}
		}
		d.Targets = append(d.Targets, jt)
	}
	return d
}

// encodeJSON writes v with encoding/json: compact, or indented by two
// spaces with every line after the first starting with prefix.
func encodeJSON(v any, indent bool, prefix string) (string, error) {
	var buf bytes.Buffer
	enc := newJSONEncoder(&buf)
	if indent {
		enc.SetIndent(prefix, "  ")
	}
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// newJSONEncoder is encoding/json without HTML escaping (evidence text
// such as "AT&T" stays readable).
func newJSONEncoder(w *bytes.Buffer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
