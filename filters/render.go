// Package filters renders an Intent (see package policy) as vendor router
// filters through one vendor table and the embedded templates: prefix lists,
// an origin AS-path filter, a rejecting policy and, where the platform has
// one, a data-plane filter. It also diffs rendered files and builds the
// incremental commands that apply only a change.
package filters

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

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

	// interpreted: run the template without compiled ranges (tests
	// compare the two).
	interpreted bool
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
// The entries of the long lists (Entry, AddrEntry) are small views into
// the aggregated lists whose text forms are made when the template asks;
// a range over them whose body uses only their text forms, literal text,
// outer variables, {{if}} on their fields and {{template}} is written by
// compiled code straight to the output (see fastrange.go), with the same
// bytes text/template would write.
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

	p    *Prepared
	opts RenderOptions
}

// Doc returns the document the json vendor writes: the header, the
// route-filter options, the lists, and per target and for all targets
// together the ASNs, the prefixes with their evidence, the route-filter
// entries and the coverage, then the drop report. Its fields carry their
// JSON names; templates/json.tmpl lays it out.
func (d *TemplateData) Doc() *jsonDoc { return d.p.jsonDoc(d.opts, d.Lists) }

// Entry is one route-filter entry of a list. Its text forms are methods,
// made when a template asks for them (a list can hold a million entries:
// no text is kept per entry).
type Entry struct {
	l *rangeList // the whole list
	i int        // this entry's index in it
}

// rangeList and prefixList are the lists Entry and AddrEntry view.
type (
	rangeList  struct{ rs []prefixset.Range }
	prefixList struct{ ps []netip.Prefix }
)

func (e Entry) r() *prefixset.Range { return &e.l.rs[e.i] }

// Prefix is the entry's prefix as a value.
func (e Entry) Prefix() netip.Prefix { return e.r().Prefix }

// Str is the Cisco form: "P", "P le L" or "P ge G le L".
func (e Entry) Str() string { return e.text(fStr) }

// Net is the prefix ("192.0.2.0/24").
func (e Entry) Net() string { return e.text(fNet) }

// Addr is the prefix's address ("192.0.2.0").
func (e Entry) Addr() string { return e.text(fAddr) }

// Len is the prefix's length.
func (e Entry) Len() int { return e.r().Prefix.Bits() }

// Ge and Le are the matched lengths (Len <= Ge <= Le).
func (e Entry) Ge() int { return e.r().Ge }

// Le: see Ge.
func (e Entry) Le() int { return e.r().Le }

// IsExact reports Ge == Le == Len.
func (e Entry) IsExact() bool { return e.l.truth(e.i, fIsExact) }

// GeAbove reports Ge > Len (a "ge" is needed).
func (e Entry) GeAbove() bool { return e.l.truth(e.i, fGeAbove) }

// LeAbove reports Le > Len.
func (e Entry) LeAbove() bool { return e.l.truth(e.i, fLeAbove) }

// N is the 1-based position in its list (sequence numbers: "{{.N}}0").
func (e Entry) N() int { return e.i + 1 }

// Last marks the last entry of the list (separators).
func (e Entry) Last() bool { return e.l.truth(e.i, fLast) }

// text is one of the entry's text forms, as the compiled ranges write it
// (fastrange.go: one description of each field).
func (e Entry) text(f elemField) string { return string(e.l.appendField(nil, e.i, f)) }

// appendRangeStr appends the Cisco form of a range: "P", "P le L" or
// "P ge G le L".
func appendRangeStr(b []byte, r prefixset.Range) []byte {
	b = r.Prefix.AppendTo(b)
	switch {
	case r.Exact():
	case r.Ge == r.Prefix.Bits():
		b = append(b, " le "...)
		b = strconv.AppendInt(b, int64(r.Le), 10)
	default:
		b = append(b, " ge "...)
		b = strconv.AppendInt(b, int64(r.Ge), 10)
		b = append(b, " le "...)
		b = strconv.AppendInt(b, int64(r.Le), 10)
	}
	return b
}

// AddrEntry is one prefix of an address coverage, a view like Entry.
type AddrEntry struct {
	l *prefixList
	i int
}

func (a AddrEntry) p() netip.Prefix { return a.l.ps[a.i] }

// Prefix is the entry's prefix as a value.
func (a AddrEntry) Prefix() netip.Prefix { return a.p() }

// N is the 1-based position in its list.
func (a AddrEntry) N() int { return a.i + 1 }

// Net is the prefix ("192.0.2.0/24").
func (a AddrEntry) Net() string { return a.text(fNet) }

// Addr is the prefix's address ("192.0.2.0").
func (a AddrEntry) Addr() string { return a.text(fAddr) }

// Len is the prefix's length.
func (a AddrEntry) Len() int { return a.p().Bits() }

// Wildcard is the Cisco inverse mask of an IPv4 prefix ("0.0.0.255"), ""
// for IPv6.
func (a AddrEntry) Wildcard() string { return a.text(fWildcard) }

// Host is the bare address for a /32 or /128, else Net (RouterOS).
func (a AddrEntry) Host() string { return a.text(fHost) }

// Last marks the last entry of the list.
func (a AddrEntry) Last() bool { return a.l.truth(a.i, fLast) }

// text is one of the entry's text forms, as the compiled ranges write it.
func (a AddrEntry) text(f elemField) string { return string(a.l.appendField(nil, a.i, f)) }

func appendWildcard(b []byte, p netip.Prefix) []byte {
	if !p.Addr().Is4() {
		return b
	}
	return appendMask4(b, p.Bits(), true)
}

func appendHost(b []byte, p netip.Prefix) []byte {
	if p.IsSingleIP() {
		return p.Addr().AppendTo(b)
	}
	return p.AppendTo(b)
}

// entries returns the views of a list's entries.
func entries(rs []prefixset.Range) []Entry {
	out := make([]Entry, len(rs))
	l := &rangeList{rs}
	for i := range out {
		out[i] = Entry{l, i}
	}
	return out
}

// addrEntries returns the views of a coverage's prefixes.
func addrEntries(ps []netip.Prefix) []AddrEntry {
	out := make([]AddrEntry, len(ps))
	l := &prefixList{ps}
	for i := range out {
		out[i] = AddrEntry{l, i}
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
	x4, x6 := in.Exact("", prefixset.IPv4), in.Exact("", prefixset.IPv6)
	p := &Prepared{
		in:     in,
		v4:     prefixset.RouteFilter(x4, in.RouteFilter),
		v6:     prefixset.RouteFilter(x6, in.RouteFilter),
		cov4:   prefixset.Coverage(x4),
		cov6:   prefixset.Coverage(x6),
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
	var buf bytes.Buffer
	if v, err := lookup(o.Vendor); err == nil {
		buf.Grow(v.sizeHint(p))
	}
	if err := p.RenderTo(&buf, o); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RenderTo renders the prepared Intent as one vendor's configuration into
// w. Options and capacity are checked before anything is written; an error
// after that (a failing template or writer) leaves w with part of a file.
func (p *Prepared) RenderTo(w io.Writer, o RenderOptions) error {
	v, err := lookup(o.Vendor)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	names := o.Names.WithDefaults()
	if err := names.validate(); err != nil {
		return fmt.Errorf("render %s: %w", o.Vendor, err)
	}
	if o.MaxEntries < 0 {
		return fmt.Errorf("render %s: max_entries %d is negative", o.Vendor, o.MaxEntries)
	}
	lists := v.lists(p, names)
	if err := v.checkCapacity(lists, o.MaxEntries); err != nil {
		return err
	}
	tmpl, fr, err := loadTemplate(v.template, o.TemplatesDir, !o.interpreted)
	if err != nil {
		return fmt.Errorf("render %s: %w", o.Vendor, err)
	}
	data := &TemplateData{
		Vendor: o.Vendor, Version: o.Version, Names: names,
		Header: p.header(o, lists),
		V4:     p.e4, V6: p.e6, Cov4: p.a4, Cov6: p.a6, ASNs: p.asns,
		Lists: lists,
		p:     p, opts: o,
	}
	if err := executeTemplate(tmpl, fr, w, data); err != nil {
		return fmt.Errorf("render %s: template %s: %w", o.Vendor, tmpl.Name(), err)
	}
	return nil
}

// RenderAll renders several files concurrently (the Prepared data is
// read-only); the first error in the order of opts is returned.
func (p *Prepared) RenderAll(opts []RenderOptions) ([][]byte, error) {
	out := make([][]byte, len(opts))
	err := p.each(len(opts), func(i int) (err error) {
		out[i], err = p.Render(opts[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RenderAllTo renders opts[i] into ws[i], concurrently, so that files are
// written as they render instead of held whole; the first error in the
// order of opts is returned (the writers of failed renders hold part of a
// file: write to temporary files and keep them only without an error).
func (p *Prepared) RenderAllTo(ws []io.Writer, opts []RenderOptions) error {
	if len(ws) != len(opts) {
		return fmt.Errorf("render: %d writers for %d files", len(ws), len(opts))
	}
	return p.each(len(opts), func(i int) error { return p.RenderTo(ws[i], opts[i]) })
}

// each runs job(0..n-1) on up to GOMAXPROCS goroutines and returns the
// first error in index order.
func (p *Prepared) each(n int, job func(i int) error) error {
	errs := make([]error, n)
	workers := min(runtime.GOMAXPROCS(0), n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = job(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
// else the embedded file, and compiles its ranges (fastrange.go). Run it
// with executeTemplate.
func loadTemplate(name, dir string, compile bool) (*template.Template, *fastRanges, error) {
	var src []byte
	var err error
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
			return nil, nil, fmt.Errorf("templates_dir: %w", err)
		}
	}
	if src == nil {
		src, err = fs.ReadFile(templates.FS(), name)
		if err != nil {
			return nil, nil, fmt.Errorf("no embedded template: %w", err)
		}
	}
	fr := &fastRanges{}
	t, err := template.New(name).Funcs(templateFuncs()).Funcs(fr.writerFuncs()).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, nil, fmt.Errorf("template %s: %w", origin, err)
	}
	if compile {
		fr.compile(t)
	}
	return t, fr, nil
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
		// json writes a value as compact JSON (encoding/json, without
		// HTML escaping: the output is not for a browser).
		"json": func(v any) (string, error) { return encodeJSON(v, false, "") },
		// jsonIndent writes a value as indented JSON, its lines after
		// the first starting with prefix.
		"jsonIndent": func(v any, prefix string) (string, error) { return encodeJSON(v, true, prefix) },
	}
}

func mask4(p netip.Prefix, inverse bool) (string, error) {
	if !p.Addr().Is4() {
		return "", fmt.Errorf("mask of non-IPv4 prefix %s", p)
	}
	return string(appendMask4(nil, p.Bits(), inverse)), nil
}

// appendMask4 appends the dotted IPv4 mask of a length (or its inverse).
func appendMask4(b []byte, bits int, inverse bool) []byte {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	if inverse {
		m = ^m
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).AppendTo(b)
}

// hostOrPrefix writes a /32 or /128 as the bare address.
func hostOrPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
