// Package tables reads routing tables into the resolver: MRT archives of
// RIPE RIS and RouteViews (TABLE_DUMP_V2 RIB dumps with their ADD-PATH
// subtypes, BGP4MP / BGP4MP_ET update files, TABLE_DUMP for old archives),
// CAIDA's RouteViews prefix2as, IP-range tables (iptoasn, ip-location-db)
// and bgp.tools' table.jsonl. A table, plain or gzip/bzip2/xz compressed,
// is read once, as a stream, into a compact index of routes (prefix,
// origin, how many peers carried it, first and last seen: no AS paths),
// whose size depends on the number of routes, not on the file's size; every
// question of the resolver is answered from the index.
package tables

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// Format is a table format.
type Format string

// The formats.
const (
	// MRT is RFC 6396 MRT: TABLE_DUMP_V2 RIBs (RFC 8050 ADD-PATH
	// included), BGP4MP / BGP4MP_ET updates, TABLE_DUMP.
	MRT Format = "mrt"
	// Pfx2as is CAIDA's RouteViews prefix2as ("prefix<TAB>length<TAB>ASN").
	Pfx2as Format = "pfx2as"
	// IP2ASN is an IP-range table: iptoasn TSV or ip-location-db CSV.
	IP2ASN Format = "ip2asn"
	// BGPTools is bgp.tools' table.jsonl.
	BGPTools Format = "bgptools"
)

// Formats lists the formats.
var Formats = []Format{MRT, Pfx2as, IP2ASN, BGPTools}

// DefaultMaxBytes bounds a downloaded table (a full RIPE RIS RIB dump is
// around half a gigabyte compressed).
const DefaultMaxBytes = 8 << 30

// Options describe one table.
type Options struct {
	Format Format
	// Path or URL of the table (exactly one). A URL is downloaded into
	// CacheDir and read from there.
	Path string
	URL  string
	// Source names the table in evidence ("table:<Source>"); the default
	// is "<format>:<file name>" (without a compression suffix).
	Source string
	// Seen stamps the evidence of formats without times (all but MRT);
	// zero means the file's modification time, or when it was downloaded.
	Seen time.Time
	// Note is recorded in the provenance.
	Note string
	// Client downloads a URL (its UserAgent is what the server sees; its
	// MaxBytes defaults to DefaultMaxBytes here).
	Client *fetch.Client
	// CacheDir keeps downloaded tables; empty means the user's cache
	// directory (asfence/tables under it).
	CacheDir string
	// MaxAge of a downloaded copy before it is asked for again (default
	// 1h; the copy is kept when the server says it did not change).
	MaxAge time.Duration
	// Timeout bounds a query, the first of which downloads and reads the
	// table (default DefaultTimeout); the resolver's shorter per-source
	// timeout does not apply (asn.QueryTimeouter).
	Timeout time.Duration
}

// DefaultTimeout bounds a query of a table, downloading and reading
// included: a full RIB of a large collector takes minutes.
const DefaultTimeout = 15 * time.Minute

// Source answers from one table. It implements asn.Resolver,
// asn.RouteLookup, asn.Discoverer (IP-range tables' organisation names),
// asn.QueryTimeouter and asn.Provenancer.
type Source struct {
	opts  Options
	name  string // evidence source, "table:<Source>"
	input string // the path or URL
	file  string // its file name, for evidence details
	idx   *fetch.Cached[*Index]
}

// New creates the source; nothing is read until it is first asked (then
// once per change of the table). A local file must exist.
func New(o Options) (*Source, error) {
	if !slices.Contains(Formats, o.Format) {
		return nil, fmt.Errorf("tables: unknown format %q", o.Format)
	}
	if (o.Path == "") == (o.URL == "") {
		return nil, errors.New("tables: set either a path or a URL")
	}
	s := &Source{opts: o, input: o.Path + o.URL}
	s.file = fileName(o.Path, o.URL)
	if o.Source == "" {
		o.Source = string(o.Format) + ":" + trimCompression(s.file)
		s.opts.Source = o.Source
	}
	s.name = "table:" + o.Source
	cl := fetch.Client{MaxBytes: DefaultMaxBytes}
	if o.Client != nil {
		cl = *o.Client
		if cl.MaxBytes == 0 {
			cl.MaxBytes = DefaultMaxBytes
		}
	}
	s.idx = &fetch.Cached[*Index]{Path: o.Path, URL: o.URL, Client: &cl, MaxAge: o.MaxAge, Open: s.open}
	if o.Path != "" {
		st, err := os.Stat(o.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if st.IsDir() {
			return nil, fmt.Errorf("%s: %s is a directory", s.name, o.Path)
		}
	} else {
		dir := o.CacheDir
		if dir == "" {
			dir = DefaultCacheDir()
		}
		sum := sha256.Sum256([]byte(o.URL))
		s.idx.CacheFile = filepath.Join(dir, hex.EncodeToString(sum[:8])+"-"+s.file)
	}
	return s, nil
}

// DefaultCacheDir is where downloaded tables are kept by default: asfence/
// tables in the user's cache directory (XDG_CACHE_HOME, ~/.cache), else in
// the temporary directory.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "asfence", "tables")
	}
	return filepath.Join(os.TempDir(), "asfence-tables")
}

func fileName(p, u string) string {
	name := filepath.Base(p)
	if u != "" {
		name = "table"
		if pu, err := url.Parse(u); err == nil && path.Base(pu.Path) != "/" && path.Base(pu.Path) != "." {
			name = path.Base(pu.Path)
		}
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, name)
}

func trimCompression(name string) string {
	for _, ext := range []string{".gz", ".bz2", ".xz"} {
		name = strings.TrimSuffix(name, ext)
	}
	return name
}

// Name implements asn.Source: "table:<source>", as in the evidence.
func (s *Source) Name() string { return s.name }

// QueryTimeout implements asn.QueryTimeouter.
func (s *Source) QueryTimeout() time.Duration {
	if s.opts.Timeout > 0 {
		return s.opts.Timeout
	}
	return DefaultTimeout
}

// open reads the table into an index (fetch.Cached's large-file mode):
// what was read before an error is kept with it.
func (s *Source) open(ctx context.Context, r io.Reader, _ fetch.Doc) (*Index, error) {
	b := newBuilder()
	dr, kind, err := fetch.Decompress(r)
	compression := string(kind)
	if err == nil {
		switch s.opts.Format {
		case MRT:
			err = scanMRT(ctx, dr, compression, b)
		case Pfx2as:
			err = scanLines(ctx, dr, compression, b, pfx2asLine)
		case BGPTools:
			err = scanLines(ctx, dr, compression, b, bgptoolsLine)
		case IP2ASN:
			err = ip2asnScan(ctx, dr, compression, b)
		}
	}
	x := b.finish()
	switch {
	case err != nil && x.Stats.Bad > 1:
		err = fmt.Errorf("%s: %d of %d records could not be read and were skipped; the first: %w", s.input, x.Stats.Bad, x.Stats.Records, err)
	case err != nil:
		err = fmt.Errorf("%s: %w", s.input, err)
	case x.Len() == 0 && x.Stats.Records == 0:
		err = fmt.Errorf("%s: no routes: the table is empty", s.input)
	}
	return x, err
}

// load returns the index (scanning the table if needed), with the error
// that ended the scan if it broke off: the index then holds what was read
// before.
func (s *Source) load(ctx context.Context) (*Index, fetch.Doc, error) {
	x, d, err := s.idx.Get(ctx)
	if x == nil && err == nil {
		err = errors.New("no table")
	}
	return x, d, err
}

// seen is the evidence time of a route: the last time the table saw it,
// for tables with times, else the configured data date or the file's time.
func (s *Source) seen(r *route, d fetch.Doc) time.Time {
	if r.last != 0 {
		return time.Unix(int64(r.last), 0).UTC()
	}
	if !s.opts.Seen.IsZero() {
		return s.opts.Seen.UTC()
	}
	return d.Time.UTC()
}

func stamp(ts uint32) string { return time.Unix(int64(ts), 0).UTC().Format(time.RFC3339) }

// detail describes a route as the table shows it.
func (s *Source) detail(x *Index, r *route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: origin AS%d", s.file, r.origin)
	switch s.opts.Format {
	case MRT:
		peers := "peers"
		if r.peers == 1 {
			peers = "peer"
		}
		if x.Stats.Messages > 0 && x.Stats.RIBRecords == 0 {
			fmt.Fprintf(&b, ", announced by %d %s", r.peers, peers)
			if r.first == r.last {
				fmt.Fprintf(&b, " at %s", stamp(r.last))
			} else {
				fmt.Fprintf(&b, " from %s to %s", stamp(r.first), stamp(r.last))
			}
		} else {
			fmt.Fprintf(&b, ", carried by %d %s, announced since %s, in the table at %s", r.peers, peers, stamp(r.first), stamp(r.last))
		}
	case BGPTools:
		fmt.Fprintf(&b, ", seen by %d bgp.tools peers", r.peers)
	case IP2ASN:
		if n := x.name(r); n != "" {
			fmt.Fprintf(&b, " %q", n)
		}
	}
	return b.String()
}

// Resolve returns the prefixes the target's ASNs originate in the table,
// and (IP-range tables) the organisation name of each ASN.
func (s *Source) Resolve(ctx context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	x, d, err := s.load(ctx)
	if x == nil {
		return out, err
	}
	for _, a := range asns {
		named := false
		x.originated(a, func(r *route) {
			out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: r.prefix(), Origin: a,
				Evidence: asn.Evidence{Source: s.name, Detail: s.detail(x, r), Seen: s.seen(r, d)}})
			if n := x.name(r); n != "" && !named {
				named = true
				out.ASNs = append(out.ASNs, asn.ASNFact{ASN: a, Name: firstWord(n),
					Evidence: asn.Evidence{Source: s.name, Detail: fmt.Sprintf("%s: organisation %q", s.file, n), Seen: s.seen(r, d)}})
			}
		})
	}
	return out, err
}

// Routes implements asn.RouteLookup: the routes of the table equal to or
// more specific than p, with their origins.
func (s *Source) Routes(ctx context.Context, p netip.Prefix) ([]asn.RouteFact, error) {
	x, d, err := s.load(ctx)
	if x == nil {
		return nil, err
	}
	var out []asn.RouteFact
	x.within(p, func(r *route) {
		out = append(out, asn.RouteFact{Prefix: r.prefix(), Origin: r.origin,
			Evidence: asn.Evidence{Source: s.name, Detail: s.detail(x, r), Seen: s.seen(r, d)}})
	})
	return out, err
}

// Discover implements asn.Discoverer for IP-range tables: the ASNs whose
// organisation name matches the target's names, as name-only claims
// (attributed only when the target opts in to name-only ASNs).
func (s *Source) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	re := t.NameMatcher()
	if s.opts.Format != IP2ASN || re == nil {
		return nil, nil
	}
	x, d, err := s.load(ctx)
	if x == nil {
		return nil, err
	}
	var out []asn.ASNFact
	seen := s.opts.Seen
	if seen.IsZero() {
		seen = d.Time
	}
	matches := map[uint32]bool{}
	for _, na := range x.named {
		name := x.names[na.name-1]
		m, ok := matches[na.name]
		if !ok {
			m = re.MatchString(name)
			matches[na.name] = m
		}
		if m {
			out = append(out, asn.ASNFact{ASN: na.asn, Name: firstWord(name), NameOnly: true, Evidence: asn.Evidence{
				Source: s.name, Detail: fmt.Sprintf("%s: organisation %q matches the target's names", s.file, name), Seen: seen.UTC()}})
		}
	}
	return out, err
}

// Provenance implements asn.Provenancer: the table as last read (a URL not
// downloaded yet has none).
func (s *Source) Provenance() []asn.Input {
	x, d, ok := s.idx.Loaded()
	if !ok || x == nil {
		return nil
	}
	st := x.Stats
	note := fmt.Sprintf("%s table: %d routes from %d records", s.opts.Format, st.Routes, st.Records)
	if st.Peers > 0 {
		note += fmt.Sprintf(", %d peers", st.Peers)
	}
	if !st.First.IsZero() {
		note += fmt.Sprintf(", %s to %s", st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))
	}
	if st.Bad > 0 {
		note += fmt.Sprintf(", %d unreadable records skipped", st.Bad)
	}
	if s.opts.Note != "" {
		note += "; " + s.opts.Note
	}
	return []asn.Input{{Source: s.name, Input: d.Input, SHA256: d.SHA256, Note: note}}
}

// Stats returns what the last scan read (zero before the first), for
// tools and benchmarks.
func (s *Source) Stats() Stats {
	x, _, ok := s.idx.Loaded()
	if !ok || x == nil {
		return Stats{}
	}
	return x.Stats
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t"); i > 0 {
		return strings.TrimSuffix(s[:i], ",")
	}
	return strings.TrimSuffix(s, ",")
}
