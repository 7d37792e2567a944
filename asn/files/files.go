// Package files reads the shared registry data formats from local files:
// ipverse per-ASN JSON, plain CIDR lists and potaroo-style ASN name lists.
// The embedded snapshot is built with these, by the same engine as a live run.
package files

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
)

// MaxFileBytes bounds one input file.
const MaxFileBytes = 256 << 20

// Options describe one file.
type Options struct {
	Path string
	// Source is the evidence source name (default "file:<format>").
	Source string
	// Seen stamps evidence; zero means the file's modification time.
	Seen time.Time
	Note string
	// Target attributes a CIDR list to one target.
	Target string
	// ASN is the origin of every prefix of a CIDR list (instead of Target).
	ASN uint32
	// Kind is the kind of source (see asn.Kind); the default follows the
	// format (DefaultKind).
	Kind asn.Kind
}

// DefaultKind is the kind of a file of this format: ipverse files and CIDR
// lists of one ASN are per-ASN lists, CIDR lists of a target range lists,
// RPSL files IRR objects, AS name lists names.
func DefaultKind(format string, asnum uint32) asn.Kind {
	switch format {
	case "ipverse":
		return asn.KindASNList
	case "cidr":
		if asnum != 0 {
			return asn.KindASNList
		}
		return asn.KindRangeList
	case "rpsl":
		return asn.KindIRR
	case "asnames":
		return asn.KindNames
	}
	return asn.KindOther
}

func (o *Options) defaults(format string) {
	if o.Source == "" {
		o.Source = "file:" + format
	}
	if o.Kind == "" {
		o.Kind = DefaultKind(format, o.ASN)
	}
}

// read loads the file and records its checksum.
func read(o Options) ([]byte, time.Time, asn.Input, error) {
	st, err := os.Stat(o.Path)
	if err != nil {
		return nil, time.Time{}, asn.Input{}, err
	}
	if st.Size() > MaxFileBytes {
		return nil, time.Time{}, asn.Input{}, fmt.Errorf("%s: larger than %d bytes", o.Path, MaxFileBytes)
	}
	data, err := os.ReadFile(o.Path)
	if err != nil {
		return nil, time.Time{}, asn.Input{}, err
	}
	seen := o.Seen
	if seen.IsZero() {
		seen = st.ModTime()
	}
	sum := sha256.Sum256(data)
	return data, seen.UTC(), asn.Input{Source: o.Source, Input: o.Path, SHA256: hex.EncodeToString(sum[:]), Note: o.Note, Kind: string(o.Kind)}, nil
}

// IPverse is one ipverse/asn-ip per-ASN JSON file (either schema: "subnets"
// with handle/description, or "prefixes" with metadata).
type IPverse struct {
	opts  Options
	input asn.Input
	asn   uint32
	name  string
	pfx   []netip.Prefix
	seen  time.Time
}

type ipverseDoc struct {
	ASN         *int64 `json:"asn"`
	Handle      string `json:"handle"`
	Description string `json:"description"`
	Metadata    *struct {
		Handle      string `json:"handle"`
		Description string `json:"description"`
	} `json:"metadata"`
	Subnets  *ipverseLists `json:"subnets"`
	Prefixes *ipverseLists `json:"prefixes"`
}

type ipverseLists struct {
	IPv4 []string `json:"ipv4"`
	IPv6 []string `json:"ipv6"`
}

// NewIPverse reads and validates an ipverse file.
func NewIPverse(o Options) (*IPverse, error) {
	o.defaults("ipverse")
	data, seen, in, err := read(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	var d ipverseDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Source, o.Path, err)
	}
	if d.ASN == nil || *d.ASN <= 0 || *d.ASN > 4294967295 {
		return nil, fmt.Errorf("%s: %s: missing or invalid \"asn\"", o.Source, o.Path)
	}
	lists := d.Subnets
	if lists == nil {
		lists = d.Prefixes
	}
	if lists == nil {
		return nil, fmt.Errorf("%s: %s: neither \"subnets\" nor \"prefixes\" present", o.Source, o.Path)
	}
	f := &IPverse{opts: o, input: in, asn: uint32(*d.ASN), seen: seen}
	f.name = d.Handle
	if d.Metadata != nil && d.Metadata.Handle != "" {
		f.name = d.Metadata.Handle
	}
	for fam, list := range map[string][]string{"ipv4": lists.IPv4, "ipv6": lists.IPv6} {
		for i, s := range list {
			p, err := asn.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %s[%d]: %w", o.Source, o.Path, fam, i, err)
			}
			if (fam == "ipv4") != p.Addr().Is4() {
				return nil, fmt.Errorf("%s: %s: %s[%d]: %s is in the wrong list", o.Source, o.Path, fam, i, p)
			}
			f.pfx = append(f.pfx, p)
		}
	}
	return f, nil
}

// Name implements asn.Source.
func (f *IPverse) Name() string { return f.opts.Source + ":" + f.opts.Path }

// Provenance implements asn.Provenancer.
func (f *IPverse) Provenance() []asn.Input { return []asn.Input{f.input} }

// Resolve returns the file's prefixes when its ASN belongs to the target.
func (f *IPverse) Resolve(_ context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	if !containsASN(asns, f.asn) {
		return out, nil
	}
	ev := asn.Evidence{Source: f.opts.Source, Detail: fmt.Sprintf("announced by AS%d (%s)", f.asn, f.base()), Seen: f.seen}
	for _, p := range f.pfx {
		out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: p, Origin: f.asn, Evidence: ev})
	}
	if f.name != "" {
		out.ASNs = append(out.ASNs, asn.ASNFact{ASN: f.asn, Name: f.name, Evidence: asn.Evidence{Source: f.opts.Source, Detail: "handle " + f.name, Seen: f.seen}})
	}
	return out, nil
}

func (f *IPverse) base() string {
	if i := strings.LastIndexByte(f.opts.Path, '/'); i >= 0 {
		return f.opts.Path[i+1:]
	}
	return f.opts.Path
}

// CIDR is a plain prefix list ('#' comments and blank lines allowed),
// attributed to one target.
type CIDR struct {
	opts  Options
	input asn.Input
	pfx   []netip.Prefix
	seen  time.Time
}

// NewCIDR reads and validates a CIDR list.
func NewCIDR(o Options) (*CIDR, error) {
	o.defaults("cidr")
	if (o.Target == "") == (o.ASN == 0) {
		return nil, fmt.Errorf("%s: %s: a CIDR list needs either a target or an origin ASN", o.Source, o.Path)
	}
	data, seen, in, err := read(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	c := &CIDR{opts: o, input: in, seen: seen}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := asn.ParsePrefix(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %s:%d: %w", o.Source, o.Path, n, err)
		}
		c.pfx = append(c.pfx, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Source, o.Path, err)
	}
	return c, nil
}

// Name implements asn.Source.
func (c *CIDR) Name() string { return c.opts.Source + ":" + c.opts.Path }

// Provenance implements asn.Provenancer.
func (c *CIDR) Provenance() []asn.Input { return []asn.Input{c.input} }

// Resolve returns the list's prefixes for its target.
func (c *CIDR) Resolve(_ context.Context, t *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	if c.opts.Target != "" && t.Name != c.opts.Target || c.opts.ASN != 0 && !containsASN(asns, c.opts.ASN) {
		return out, nil
	}
	detail := "listed in " + c.opts.Path
	if c.opts.Note != "" {
		detail = c.opts.Note
	}
	ev := asn.Evidence{Source: c.opts.Source, Detail: detail, Seen: c.seen}
	for _, p := range c.pfx {
		out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: p, Origin: c.opts.ASN, Evidence: ev})
	}
	return out, nil
}

// ASNames is an ASN name list as published by potaroo.net (asn.txt):
// "ASN<TAB>AS-NAME Org, CC" per line. It discovers ASNs whose holder name
// matches a target's organisation names, and names the ASNs it knows.
type ASNames struct {
	opts  Options
	input asn.Input
	names map[uint32]string
	order []uint32
	seen  time.Time
}

// NewASNames reads and validates an ASN name list.
func NewASNames(o Options) (*ASNames, error) {
	o.defaults("asnames")
	data, seen, in, err := read(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	a := &ASNames{opts: o, input: in, names: map[uint32]string{}, seen: seen}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		num, name, ok := strings.Cut(line, "\t")
		if !ok {
			num, name, ok = strings.Cut(line, " ")
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(num), "AS"), 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("%s: %s:%d: want \"ASN<TAB>NAME\", got %q", o.Source, o.Path, n, line)
		}
		if _, dup := a.names[uint32(v)]; !dup {
			a.order = append(a.order, uint32(v))
		}
		a.names[uint32(v)] = strings.TrimSpace(name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.Source, o.Path, err)
	}
	return a, nil
}

// Name implements asn.Source.
func (a *ASNames) Name() string { return a.opts.Source + ":" + a.opts.Path }

// Provenance implements asn.Provenancer.
func (a *ASNames) Provenance() []asn.Input { return []asn.Input{a.input} }

// Discover returns the ASNs whose holder name matches the target's names,
// plus the target's seed ASNs found in the list (as naming evidence).
func (a *ASNames) Discover(_ context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	re := t.NameMatcher()
	var out []asn.ASNFact
	for _, num := range a.order {
		name := a.names[num]
		if re != nil && re.MatchString(name) {
			out = append(out, asn.ASNFact{ASN: num, Name: firstWord(name), Evidence: asn.Evidence{
				Source: a.opts.Source, Detail: fmt.Sprintf("holder %q matches the target's names", name), Seen: a.seen}})
		}
	}
	return out, nil
}

// Resolve names the target's ASNs found in the list.
func (a *ASNames) Resolve(_ context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	for _, num := range asns {
		if name, ok := a.names[num]; ok {
			out.ASNs = append(out.ASNs, asn.ASNFact{ASN: num, Name: firstWord(name), Evidence: asn.Evidence{
				Source: a.opts.Source, Detail: fmt.Sprintf("listed as %q", name), Seen: a.seen}})
		}
	}
	return out, nil
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t"); i > 0 {
		return strings.TrimSuffix(s[:i], ",")
	}
	return strings.TrimSuffix(s, ",")
}

func containsASN(list []uint32, a uint32) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
