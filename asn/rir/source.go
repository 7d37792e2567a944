package rir

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// DefaultMaxHolderASNs is the holder size above which an opaque-id is
// taken to be a pool of many holders (a national registry such as CNNIC or
// JPNIC, whose whole membership appears under one opaque-id) and is not
// followed.
const DefaultMaxHolderASNs = 50

// DefaultMaxBytes bounds a statistics file (the largest, RIPE NCC's
// extended file, is around 15 MB).
const DefaultMaxBytes = 64 << 20

// Options describe one statistics file.
type Options struct {
	// Path or URL of the file (exactly one).
	Path string
	URL  string
	// Client fetches URLs; nil means defaults (its MaxBytes defaults to
	// DefaultMaxBytes here).
	Client *fetch.Client
	// MaxAge of a downloaded copy before it is fetched again (default 1h;
	// the RIRs publish daily).
	MaxAge time.Duration
	// MaxHolderASNs: see DefaultMaxHolderASNs.
	MaxHolderASNs int
}

// Source answers from one RIR statistics file. It implements
// asn.Discoverer, asn.Resolver and asn.Provenancer.
type Source struct {
	opts  Options
	input string
	file  *fetch.Cached[*File]
}

// New creates the source. A local file is read and checked now, so that a
// bad file is reported before any network query; a URL is fetched on first
// use.
func New(o Options) (*Source, error) {
	if (o.Path == "") == (o.URL == "") {
		return nil, errors.New("rir: set either a path or a URL")
	}
	if o.MaxHolderASNs <= 0 {
		o.MaxHolderASNs = DefaultMaxHolderASNs
	}
	cl := fetch.Client{MaxBytes: DefaultMaxBytes}
	if o.Client != nil {
		cl = *o.Client
		if cl.MaxBytes == 0 {
			cl.MaxBytes = DefaultMaxBytes
		}
	}
	s := &Source{opts: o, input: o.Path + o.URL}
	s.file = &fetch.Cached[*File]{Path: o.Path, URL: o.URL, Client: &cl, MaxAge: o.MaxAge,
		Parse: func(d fetch.Doc) (*File, error) { return Parse(d.Data) }}
	if o.Path != "" {
		if _, err := s.load(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name implements asn.Source.
func (s *Source) Name() string { return "rir:" + s.input }

func (s *Source) load(ctx context.Context) (*File, error) {
	f, _, err := s.file.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("rir %s: %w", s.input, err)
	}
	return f, nil
}

// Provenance implements asn.Provenancer: the file as last read (a URL not
// fetched yet has none).
func (s *Source) Provenance() []asn.Input {
	f, d, ok := s.file.Loaded()
	if !ok {
		return nil
	}
	kind := "standard"
	if f != nil && f.Extended {
		kind = "extended"
	}
	note := "RIR delegated statistics (" + kind + ")"
	if f != nil {
		note += ", registry " + f.Registry + ", serial " + f.Serial
	}
	return []asn.Input{{Source: s.source(f), Input: d.Input, SHA256: d.SHA256, Note: note}}
}

func (s *Source) source(f *File) string {
	if f == nil || f.Registry == "" {
		return "rir"
	}
	return "rir:" + f.Registry
}

func (s *Source) seen(f *File) time.Time {
	if !f.Date.IsZero() {
		return f.Date
	}
	_, d, _ := s.file.Loaded()
	return d.Time
}

// pooled reports whether an opaque-id holds too many ASNs to be one
// organisation.
func (s *Source) pooled(f *File, id string) bool {
	return f.HolderASNs(id) > uint64(s.opts.MaxHolderASNs)
}

// Discover returns, for each of the target's seed ASNs found in an extended
// file, every other ASN registered under the same opaque-id. A standard
// file (no opaque-ids) discovers nothing.
func (s *Source) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	var seeds []uint32
	for _, seed := range t.ActiveASNs() {
		seeds = append(seeds, seed.ASN)
	}
	return s.Follow(ctx, t, seeds)
}

// Follow implements asn.Follower: Discover from every ASN known so far
// (ASNs other sources found lead to their holders' other ASNs too).
func (s *Source) Follow(ctx context.Context, _ *asn.Target, known []uint32) ([]asn.ASNFact, error) {
	f, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if !f.Extended {
		return nil, nil
	}
	src, seen := s.source(f), s.seen(f)
	var out []asn.ASNFact
	for _, k := range known {
		r, ok := f.FindASN(k)
		if !ok || r.OpaqueID == "" || s.pooled(f, r.OpaqueID) {
			continue
		}
		for _, h := range f.Holder(r.OpaqueID) {
			if h.Kind != ASN {
				continue
			}
			for a := uint64(h.First); a < uint64(h.First)+uint64(h.Count); a++ {
				if uint32(a) == k {
					continue
				}
				out = append(out, asn.ASNFact{ASN: uint32(a), Evidence: asn.Evidence{Source: src, Seen: seen,
					Detail: fmt.Sprintf("same holder as AS%d (opaque-id %s), %s", k, r.OpaqueID, h.Describe())}})
			}
		}
	}
	return out, nil
}

// Resolve records how each of the target's ASNs is registered and, in an
// extended file, returns the address blocks registered to the same holders.
// The statistics do not say who originates a block, so prefixes carry no
// origin.
func (s *Source) Resolve(ctx context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	f, err := s.load(ctx)
	if err != nil {
		return out, err
	}
	src, seen := s.source(f), s.seen(f)
	holders := map[string]uint32{} // opaque-id -> first target ASN seen with it
	var order []string
	for _, a := range asns {
		r, ok := f.FindASN(a)
		if !ok {
			continue
		}
		detail := r.Describe()
		if r.OpaqueID != "" {
			detail += ", opaque-id " + r.OpaqueID
			if s.pooled(f, r.OpaqueID) {
				detail += fmt.Sprintf(" (held by %d ASNs: a national registry or other pool, not used to find more resources)", f.HolderASNs(r.OpaqueID))
			} else if _, dup := holders[r.OpaqueID]; !dup {
				holders[r.OpaqueID] = a
				order = append(order, r.OpaqueID)
			}
		}
		out.ASNs = append(out.ASNs, asn.ASNFact{ASN: a, Evidence: asn.Evidence{Source: src, Detail: detail, Seen: seen}})
	}
	for _, id := range order {
		for _, h := range f.Holder(id) {
			if h.Kind == ASN {
				continue
			}
			ev := asn.Evidence{Source: src, Seen: seen,
				Detail: fmt.Sprintf("registered to the same holder as AS%d (opaque-id %s), %s", holders[id], id, h.Describe())}
			for _, p := range h.Prefixes {
				out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: p, Evidence: ev})
			}
		}
	}
	return out, nil
}
