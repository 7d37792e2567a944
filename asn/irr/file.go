package irr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
)

// File answers the resolver's questions from a local RPSL file (format
// "rpsl" in sources.files), through the same index the test IRRd serves:
// AS-SET members (Discover), route/route6 prefixes and aut-num names
// (Resolve). Evidence names the database (source:) of each object.
type File struct {
	opts  files.Options
	idx   *Index
	input asn.Input
	seen  time.Time
}

// NewFile reads and indexes an RPSL file. Errors name the file and line.
func NewFile(o files.Options) (*File, error) {
	if o.Source == "" {
		o.Source = "file:rpsl"
	}
	if o.Kind == "" {
		o.Kind = asn.KindIRR
	}
	st, err := os.Stat(o.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	if st.Size() > files.MaxFileBytes {
		return nil, fmt.Errorf("%s: %s: larger than %d bytes", o.Source, o.Path, files.MaxFileBytes)
	}
	data, err := os.ReadFile(o.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	idx := NewIndex()
	if err := idx.AddRPSL(o.Path, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	seen := o.Seen
	if seen.IsZero() {
		seen = st.ModTime()
	}
	sum := sha256.Sum256(data)
	return &File{
		opts:  o,
		idx:   idx,
		input: asn.Input{Source: o.Source, Input: o.Path, SHA256: hex.EncodeToString(sum[:]), Note: o.Note, Kind: string(o.Kind)},
		seen:  seen.UTC(),
	}, nil
}

// Name implements asn.Source.
func (f *File) Name() string { return f.opts.Source + ":" + f.opts.Path }

// Provenance implements asn.Provenancer.
func (f *File) Provenance() []asn.Input { return []asn.Input{f.input} }

// Index returns the file's index.
func (f *File) Index() *Index { return f.idx }

// Discover expands the target's AS-SETs with the file's as-set objects.
func (f *File) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	if len(t.ASSets) == 0 {
		return nil, nil
	}
	ex, err := expandSets(ctx, t.ASSets, DefaultMaxDepth, f.lookupSets)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.opts.Source, err)
	}
	logExpansion(f.Name(), t.Name, ex)
	out := make([]asn.ASNFact, 0, len(ex.members))
	for _, m := range ex.members {
		out = append(out, asn.ASNFact{ASN: m.asn, Evidence: asn.Evidence{
			Source: f.opts.Source,
			Detail: fmt.Sprintf("member of %s (as-set in %s, %s)", strings.Join(m.path, " > "), m.source, f.opts.Path),
			Seen:   f.seen,
		}})
	}
	return out, nil
}

func (f *File) lookupSets(_ context.Context, names []string) ([]setAnswer, error) {
	out := make([]setAnswer, len(names))
	for i, n := range names {
		if s, ok := f.idx.Set(n, nil); ok {
			out[i] = setAnswer{found: true, members: s.Members, source: s.Source}
		}
	}
	return out, nil
}

// Resolve returns the route/route6 objects originated by the ASNs and the
// as-name of their aut-num objects.
func (f *File) Resolve(_ context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	for _, a := range asns {
		as := "AS" + strconv.FormatUint(uint64(a), 10)
		for _, v6 := range []bool{false, true} {
			for _, r := range f.idx.Routes(a, v6, nil) {
				class := "route"
				if v6 {
					class = "route6"
				}
				out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: r.Prefix, Origin: a, Evidence: asn.Evidence{
					Source: f.opts.Source, Detail: fmt.Sprintf("%s object, origin %s (%s)", class, as, r.Source), Seen: f.seen}})
			}
		}
		for _, n := range f.idx.AutNums(a, nil) {
			if n.Name == "" {
				continue
			}
			out.ASNs = append(out.ASNs, asn.ASNFact{ASN: a, Name: n.Name, Evidence: asn.Evidence{
				Source: f.opts.Source, Detail: fmt.Sprintf("aut-num %s as-name %s (%s)", as, n.Name, n.Source), Seen: f.seen}})
		}
	}
	return out, nil
}
