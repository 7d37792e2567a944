// Package filters renders an Intent (see package policy) as vendor router
// filters through one vendor table and the embedded templates: prefix lists,
// an origin AS-path filter, a rejecting policy and, where the platform has
// one, a data-plane filter. It also diffs rendered files and builds the
// incremental commands that apply only a change.
package filters

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
	"github.com/asfence/asfence/templates"
)

// RenderOptions selects the vendor and the details of one rendered file.
type RenderOptions struct {
	Vendor string // vendor ID
	Names  Names  // WithDefaults() applied by Render
	// MaxEntries caps each generated list; 0 = unlimited. A list over it
	// fails the generation with a *CapacityError.
	MaxEntries int
	// TemplatesDir holds optional overrides: a file named like an embedded
	// template ("junos.tmpl") replaces it.
	TemplatesDir string
	Version      string // asfence version for the header
	Regenerate   string // the command line that regenerates the file, for the header
}

// ListCount is one list in a generated file and its number of entries.
type ListCount struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Entries int    `json:"entries"`
}

// CapacityError is a generated list longer than the configured maximum.
type CapacityError struct {
	Vendor  string
	List    string
	Entries int
	Max     int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("%s: list %s would have %d entries, more than max_entries %d (raise outputs.max_entries.%s, or aggregate/narrow the targets)",
		e.Vendor, e.List, e.Entries, e.Max, e.Vendor)
}

// TemplateData is what a vendor template receives. Every value is already
// validated: prefixes are netip values (masked), names match the safe name
// pattern, header lines are printable ASCII without comment terminators.
// Per-entry text is precomputed in Entry and AddrEntry (rendering a full
// table through text/template is dominated by function calls otherwise).
type TemplateData struct {
	Vendor  string
	Version string
	// Header is the file header, one line per element, without the
	// comment marker (the template adds its own).
	Header []string
	Names  Names
	// V4 and V6 are the route-filter entries (all targets together).
	V4, V6 []Entry
	// Cov4 and Cov6 are the address coverage, for data-plane filters.
	Cov4, Cov6 []AddrEntry
	// ASNs are the origin ASNs of all targets, sorted.
	ASNs []uint32
	// Lists are the generated lists with their entry counts.
	Lists []ListCount
	// Doc is the document of the json vendor (nil for the others).
	Doc any
}

// Entry is one route-filter entry with its text forms. (Fields, not
// methods or an embedded Range: text/template looks each one up by name.)
type Entry struct {
	// Str is the Cisco form: "P", "P le L" or "P ge G le L".
	Str string
	// Net is the prefix ("192.0.2.0/24"), Addr its address, Len its length.
	Net, Addr string
	Len       int
	// Ge and Le are the matched lengths (Len <= Ge <= Le).
	Ge, Le int
	// IsExact: Ge == Le == Len. GeAbove: Ge > Len (a "ge" is needed).
	// LeAbove: Le > Len.
	IsExact, GeAbove, LeAbove bool
	// N is the 1-based position in its list (sequence numbers: "{{.N}}0").
	N int
	// Last marks the last entry of the list (separators).
	Last bool
	// Prefix is the entry's prefix as a value.
	Prefix netip.Prefix
}

// AddrEntry is one prefix of an address coverage with its text forms.
type AddrEntry struct {
	Prefix netip.Prefix
	N      int    // 1-based position
	Net    string // "192.0.2.0/24"
	Addr   string // "192.0.2.0"
	Len    int
	// Wildcard is the Cisco inverse mask of an IPv4 prefix ("0.0.0.255").
	Wildcard string
	// Host is the bare address for a /32 or /128, else Net (RouterOS).
	Host string
	Last bool
}

func entries(rs []prefixset.Range) []Entry {
	out := make([]Entry, len(rs))
	for i, r := range rs {
		b := r.Prefix.Bits()
		out[i] = Entry{Prefix: r.Prefix, Ge: r.Ge, Le: r.Le, N: i + 1, Str: r.String(), Net: r.Prefix.String(),
			Addr: r.Prefix.Addr().String(), Len: b, IsExact: r.Exact(), GeAbove: r.Ge > b, LeAbove: r.Le > b, Last: i == len(rs)-1}
	}
	return out
}

func addrEntries(ps []netip.Prefix) []AddrEntry {
	out := make([]AddrEntry, len(ps))
	for i, p := range ps {
		e := AddrEntry{Prefix: p, N: i + 1, Net: p.String(), Addr: p.Addr().String(), Len: p.Bits(), Last: i == len(ps)-1}
		e.Host = e.Net
		if p.IsSingleIP() {
			e.Host = e.Addr
		}
		if p.Addr().Is4() {
			e.Wildcard, _ = mask4(p, true)
		}
		out[i] = e
	}
	return out
}

// MaxEntriesFor returns the configured list capacity for a vendor: its own
// entry, else "default", else 0 (unlimited).
func MaxEntriesFor(c OutputConfig, vendor string) int {
	if v, ok := c.MaxEntries[vendor]; ok {
		return v
	}
	return c.MaxEntries["default"]
}

// Prepared holds the aggregations of an Intent, computed once and shared
// by the renders of several vendors.
type Prepared struct {
	in         *policy.Intent
	v4, v6     []prefixset.Range
	cov4, cov6 []netip.Prefix
	asns       []uint32
	// text forms, made once for all vendors
	e4, e6 []Entry
	a4, a6 []AddrEntry
	// per target: exact prefix counts per family
	counts  map[string][2]int
	sources []string
}

// Prepare computes the route-filter entries, coverage and ASNs of all
// targets of an Intent.
func Prepare(in *policy.Intent) *Prepared {
	p := &Prepared{
		in:     in,
		v4:     in.RouteFilterEntries("", prefixset.IPv4),
		v6:     in.RouteFilterEntries("", prefixset.IPv6),
		cov4:   in.Coverage("", prefixset.IPv4),
		cov6:   in.Coverage("", prefixset.IPv6),
		asns:   in.ASNs(""),
		counts: map[string][2]int{},
	}
	p.sources = in.Sources()
	p.e4, p.e6 = entries(p.v4), entries(p.v6)
	p.a4, p.a6 = addrEntries(p.cov4), addrEntries(p.cov6)
	for _, t := range in.Targets {
		var c [2]int
		for _, x := range t.Prefixes {
			if x.Prefix.Addr().Is4() {
				c[0]++
			} else {
				c[1]++
			}
		}
		p.counts[t.Name] = c
	}
	return p
}

// Render renders an Intent as one vendor's configuration.
func Render(in *policy.Intent, o RenderOptions) ([]byte, error) {
	if in == nil {
		return nil, errors.New("render: no intent")
	}
	return Prepare(in).Render(o)
}

// Render renders the prepared Intent as one vendor's configuration.
func (p *Prepared) Render(o RenderOptions) ([]byte, error) {
	v, err := lookup(o.Vendor)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	names := o.Names.WithDefaults()
	if err := names.validate(); err != nil {
		return nil, fmt.Errorf("render %s: %w", o.Vendor, err)
	}
	if o.MaxEntries < 0 {
		return nil, fmt.Errorf("render %s: max_entries %d is negative", o.Vendor, o.MaxEntries)
	}
	lists := v.lists(p, names)
	if err := v.checkCapacity(lists, o.MaxEntries); err != nil {
		return nil, err
	}
	tmpl, overridden, err := loadTemplate(v.template, o.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", o.Vendor, err)
	}
	data := &TemplateData{
		Vendor: o.Vendor, Version: o.Version, Names: names,
		Header: p.header(o, lists),
		V4:     p.e4, V6: p.e6, Cov4: p.a4, Cov6: p.a6, ASNs: p.asns,
		Lists: lists,
	}
	if o.Vendor == "json" {
		data.Doc = p.jsonDoc(o, lists)
	}
	var buf bytes.Buffer
	if o.Vendor == "json" && !overridden {
		// The embedded json.tmpl is only {{json .Doc}}: write the document
		// directly instead of through a string of the whole output.
		n := 0
		for _, c := range p.counts {
			n += c[0] + c[1]
		}
		buf.Grow(260*n + 140*(len(p.v4)+len(p.v6)+len(p.cov4)+len(p.cov6)) + 4096)
		if err := writeJSON(&buf, data.Doc); err != nil {
			return nil, fmt.Errorf("render json: %w", err)
		}
		return buf.Bytes(), nil
	}
	buf.Grow(100*(len(p.v4)+len(p.v6)) + 120*(len(p.cov4)+len(p.cov6)) + 4096)
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render %s: template %s: %w", o.Vendor, tmpl.Name(), err)
	}
	return buf.Bytes(), nil
}

// RenderAll renders several files concurrently (the Prepared data is
// read-only); the first error in the order of opts is returned.
func (p *Prepared) RenderAll(opts []RenderOptions) ([][]byte, error) {
	out := make([][]byte, len(opts))
	errs := make([]error, len(opts))
	workers := min(runtime.GOMAXPROCS(0), len(opts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i], errs[i] = p.Render(opts[i])
			}
		}()
	}
	for i := range opts {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Lists returns the lists of the vendor's file with their entry counts
// (nil for an unknown vendor).
func (p *Prepared) Lists(o RenderOptions) []ListCount {
	v, err := lookup(o.Vendor)
	if err != nil {
		return nil
	}
	return v.lists(p, o.Names.WithDefaults())
}

// header builds the file header lines.
func (p *Prepared) header(o RenderOptions, lists []ListCount) []string {
	in := p.in
	version := o.Version
	if version == "" {
		version = "(unknown version)"
	}
	h := []string{
		fmt.Sprintf("Generated by asfence %s for %s. Do not edit: regenerate.", version, o.Vendor),
		"Snapshot: " + in.SnapshotTime.UTC().Format(time.RFC3339) + orEmpty(" by ", in.Generator),
	}
	for _, t := range in.Targets {
		c := p.counts[t.Name]
		v4, v6 := c[0], c[1]
		h = append(h, fmt.Sprintf("Target %s: origin ASNs %d, IPv4 prefixes %d, IPv6 prefixes %d", t.Name, len(t.ASNs), v4, v6))
	}
	if len(in.Targets) == 0 {
		h = append(h, "Targets: none")
	}
	for _, l := range lists {
		h = append(h, fmt.Sprintf("List %s: %d entries (%s)", l.Name, l.Entries, l.Kind))
	}
	rf := in.RouteFilter
	if rf.OrLonger {
		h = append(h, fmt.Sprintf("Route filters match each prefix and its more-specifics up to /%d (IPv4) and /%d (IPv6)",
			capLen(rf.MaxLength4, 32), capLen(rf.MaxLength6, 128)))
	} else {
		h = append(h, "Route filters match the registered prefixes exactly")
	}
	if n := len(in.Dropped); n > 0 {
		h = append(h, fmt.Sprintf("Dropped by policy: %d (%s); see `asfence generate` output or the json vendor", n, dropSummary(in.Dropped)))
	}
	for _, inc := range in.Incomplete {
		t := inc.Target
		if t == "" {
			t = "all targets"
		}
		h = append(h, fmt.Sprintf("INCOMPLETE: source %s failed for %s: %s", inc.Source, t, inc.Error))
	}
	if src := p.sources; len(src) > 0 {
		h = append(h, "Evidence sources: "+strings.Join(src, ", "))
	}
	re := o.Regenerate
	if re == "" {
		re = "asfence generate --vendor " + o.Vendor
	}
	h = append(h, "Regenerate: "+re)
	for i := range h {
		h[i] = commentSafe(h[i])
	}
	return h
}

// capLen is a configured maximum length, or the family's maximum when unset.
func capLen(m, bits int) int {
	if m <= 0 || m > bits {
		return bits
	}
	return m
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// dropSummary counts drops by reason, e.g. "bogon 2, protected 1".
func dropSummary(ds []policy.Drop) string {
	counts := map[string]int{}
	var reasons []string
	for _, d := range ds {
		if counts[d.Reason] == 0 {
			reasons = append(reasons, d.Reason)
		}
		counts[d.Reason]++
	}
	slices.Sort(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s %d", r, counts[r])
	}
	return strings.Join(parts, ", ")
}

// commentSafe keeps a header line inside its comment on every platform:
// printable ASCII only, and no "*/" (Junos uses C comments).
func commentSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return strings.ReplaceAll(string(b), "*/", "* /")
}

// validate checks every name against the pattern that is safe unquoted on
// every platform (the config loader checks the same, with file and line).
func (n Names) validate() error {
	for _, f := range []struct{ key, v string }{
		{"prefix_v4", n.PrefixV4}, {"prefix_v6", n.PrefixV6}, {"as_path", n.ASPath},
		{"policy", n.Policy}, {"acl_v4", n.ACLV4}, {"acl_v6", n.ACLV6},
	} {
		if !nameRE.MatchString(f.v) {
			return fmt.Errorf("names.%s: invalid name %q (1-48 of A-Z a-z 0-9 - _, starting with a letter)", f.key, f.v)
		}
	}
	return nil
}

// loadTemplate parses a template: the override in dir if there is one,
// else the embedded file. overridden says which.
func loadTemplate(name, dir string) (t *template.Template, overridden bool, err error) {
	var src []byte
	origin := "embedded " + name
	if dir != "" {
		path := filepath.Join(dir, name)
		src, err = os.ReadFile(path)
		switch {
		case err == nil:
			origin = path
		case errors.Is(err, fs.ErrNotExist):
			src = nil
		default:
			return nil, false, fmt.Errorf("templates_dir: %w", err)
		}
	}
	overridden = src != nil
	if src == nil {
		src, err = fs.ReadFile(templates.FS(), name)
		if err != nil {
			return nil, false, fmt.Errorf("no embedded template: %w", err)
		}
	}
	t, err = template.New(name).Funcs(templateFuncs()).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, false, fmt.Errorf("template %s: %w", origin, err)
	}
	return t, overridden, nil
}

// templateFuncs are the helpers templates may use. Each takes validated
// values and returns text in one fixed format.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		// addr and bits split a prefix ("192.0.2.0", 24).
		"addr": func(p netip.Prefix) string { return p.Addr().String() },
		"bits": func(p netip.Prefix) int { return p.Bits() },
		// wildcard is the Cisco inverse mask of an IPv4 prefix (0.0.0.255).
		"wildcard": func(p netip.Prefix) (string, error) { return mask4(p, true) },
		// netmask is the dotted mask of an IPv4 prefix (255.255.255.0).
		"netmask": func(p netip.Prefix) (string, error) { return mask4(p, false) },
		// ident turns a name into an identifier without '-' (BIRD).
		"ident": func(s string) string { return strings.ReplaceAll(s, "-", "_") },
		"lower": strings.ToLower,
		// host writes a single-address prefix as the bare address (as
		// RouterOS stores address-list entries), any other as a prefix.
		"host": hostOrPrefix,
		"add":  func(a, b int) int { return a + b },
		"mul":  func(a, b int) int { return a * b },
		// notlast reports whether index i is not the last of n elements.
		"notlast": func(i, n int) bool { return i < n-1 },
		// chainArgs bundles a hook name with the names (nftables chains).
		"chainArgs": func(hook string, n Names) struct {
			Hook  string
			Names Names
		} {
			return struct {
				Hook  string
				Names Names
			}{hook, n}
		},
		// fullReplace stops an incremental template: the change needs
		// the full file, for the reason given.
		"fullReplace": func(why string) (string, error) { return "", &fullReplaceError{why} },
		// json renders a value as JSON laid out by writeJSON.
		"json": func(v any) (string, error) {
			var out bytes.Buffer
			err := writeJSON(&out, v)
			return strings.TrimSuffix(out.String(), "\n"), err
		},
	}
}

func mask4(p netip.Prefix, inverse bool) (string, error) {
	if !p.Addr().Is4() {
		return "", fmt.Errorf("mask of non-IPv4 prefix %s", p)
	}
	m := uint32(0)
	if p.Bits() > 0 {
		m = ^uint32(0) << (32 - p.Bits())
	}
	if inverse {
		m = ^m
	}
	return fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m)), nil
}

// jsonRange is a Range in the json output.
type jsonRange struct {
	Prefix netip.Prefix `json:"prefix"`
	Ge     int          `json:"ge"`
	Le     int          `json:"le"`
}

type jsonFamilies[T any] struct {
	IPv4 []T `json:"ipv4"`
	IPv6 []T `json:"ipv6"`
}

type jsonTarget struct {
	Name        string                     `json:"name"`
	Description string                     `json:"description,omitempty"`
	ASNs        []uint32                   `json:"asns"`
	Prefixes    []asn.Prefix               `json:"prefixes"`
	RouteFilter jsonFamilies[jsonRange]    `json:"route_filter"`
	Coverage    jsonFamilies[netip.Prefix] `json:"coverage"`
}

type jsonAll struct {
	ASNs        []uint32                   `json:"asns"`
	RouteFilter jsonFamilies[jsonRange]    `json:"route_filter"`
	Coverage    jsonFamilies[netip.Prefix] `json:"coverage"`
}

type jsonRFOptions struct {
	MoreSpecifics bool `json:"more_specifics"`
	MaxLength4    int  `json:"max_length_ipv4"`
	MaxLength6    int  `json:"max_length_ipv6"`
}

type jsonDoc struct {
	Generator    string           `json:"generator"`
	Header       []string         `json:"header"`
	SnapshotTime time.Time        `json:"snapshot_time"`
	Regenerate   string           `json:"regenerate"`
	RouteFilter  jsonRFOptions    `json:"route_filter_options"`
	Lists        []ListCount      `json:"lists"`
	Incomplete   []asn.Incomplete `json:"incomplete"`
	Targets      []jsonTarget     `json:"targets"`
	All          jsonAll          `json:"all"`
	Dropped      []policy.Drop    `json:"dropped"`
	DropCounts   map[string]int   `json:"drop_counts"`
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
		d.Targets = append(d.Targets, jsonTarget{
			Name: t.Name, Description: t.Description,
			ASNs: nonNil(t.ASNs), Prefixes: nonNil(t.Prefixes),
			RouteFilter: jsonFamilies[jsonRange]{
				nonNil(jsonRanges(in.RouteFilterEntries(t.Name, prefixset.IPv4))),
				nonNil(jsonRanges(in.RouteFilterEntries(t.Name, prefixset.IPv6)))},
			Coverage: jsonFamilies[netip.Prefix]{nonNil(in.Coverage(t.Name, prefixset.IPv4)), nonNil(in.Coverage(t.Name, prefixset.IPv6))},
		})
	}
	return d
}

// hostOrPrefix writes a /32 or /128 as the bare address.
func hostOrPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// writeJSON writes v as indented JSON, except that the elements of arrays
// nested two or more levels deep are written one per line (a prefix with
// its evidence, a route-filter entry), so diffs of the document stay
// readable. Elements are marshalled one by one: no buffer of the whole
// document is built and re-indented.
func writeJSON(w *bytes.Buffer, v any) error {
	var scratch bytes.Buffer
	enc := json.NewEncoder(&scratch)
	enc.SetEscapeHTML(false)
	compact := func(v reflect.Value) error {
		scratch.Reset()
		if err := enc.Encode(v.Interface()); err != nil {
			return err
		}
		w.Write(bytes.TrimSuffix(scratch.Bytes(), []byte("\n")))
		return nil
	}
	indent := func(depth int) {
		w.WriteByte('\n')
		for range depth {
			w.WriteString("  ")
		}
	}
	marshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[encoding.TextMarshaler]()
	var stream func(v reflect.Value, depth int) error
	stream = func(v reflect.Value, depth int) error {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				w.WriteString("null")
				return nil
			}
			v = v.Elem()
		}
		if v.Type().Implements(marshaler) || v.Type().Implements(textMarshaler) ||
			reflect.PointerTo(v.Type()).Implements(textMarshaler) {
			return compact(v)
		}
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			n := 0
			for i := range t.NumField() {
				f := t.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = f.Name
				}
				fv := v.Field(i)
				if opts == "omitempty" && fv.IsZero() {
					continue
				}
				if n > 0 {
					w.WriteByte(',')
				} else {
					w.WriteByte('{')
				}
				n++
				indent(depth + 1)
				w.WriteString(strconv.Quote(name))
				w.WriteString(": ")
				if err := stream(fv, depth+1); err != nil {
					return err
				}
			}
			if n == 0 {
				w.WriteString("{}")
				return nil
			}
			indent(depth)
			w.WriteByte('}')
			return nil
		case reflect.Slice, reflect.Array:
			if v.Kind() == reflect.Slice && v.IsNil() {
				w.WriteString("null")
				return nil
			}
			if v.Len() == 0 {
				w.WriteString("[]")
				return nil
			}
			w.WriteByte('[')
			for i := range v.Len() {
				if i > 0 {
					w.WriteByte(',')
				}
				indent(depth + 1)
				var err error
				if depth >= 2 {
					err = compact(v.Index(i))
				} else {
					err = stream(v.Index(i), depth+1)
				}
				if err != nil {
					return err
				}
			}
			indent(depth)
			w.WriteByte(']')
			return nil
		}
		return compact(v)
	}
	if err := stream(reflect.ValueOf(v), 0); err != nil {
		return err
	}
	w.WriteByte('\n')
	return nil
}
