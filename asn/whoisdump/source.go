// Package whoisdump reads the RIRs' whois database dumps (RPSL bulk files
// such as APNIC's apnic.db.inetnum.gz or RIPE's split ripe.db.*.gz, and
// combined dumps such as AFRINIC's afrinic.db.gz) and ties registrations
// to targets: aut-num, organisation and mntner objects say which
// organisations and maintainers are a target's, and inetnum/inet6num
// objects registered to those organisations, maintained by those
// maintainers or named after the target become prefixes, with the object
// as evidence and no origin (a registration does not say who announces
// the space).
//
// Dumps are streamed: the identity objects (aut-num, organisation, mntner)
// are kept in a compact index, and the address objects are read again for
// every query, keeping only what concerns the target.
package whoisdump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// Defaults.
const (
	// DefaultTimeout bounds one query (downloads and a scan of every dump):
	// RIPE's inetnum dump alone is about 4 million objects.
	DefaultTimeout = 30 * time.Minute
	// DefaultMaxAge of a downloaded dump before it is fetched again (the
	// RIRs publish daily).
	DefaultMaxAge = 12 * time.Hour
	// DefaultMaxBytes bounds one downloaded dump.
	DefaultMaxBytes = 8 << 30
)

// Dump is one dump file, by path or URL (exactly one).
type Dump struct {
	Path string
	URL  string
}

// Options describe one registry's dumps.
type Options struct {
	// Registry names the registry ("apnic", "ripe", "afrinic", "lacnic"):
	// evidence source "whois:<registry>".
	Registry string
	Dumps    []Dump
	// Client fetches URLs; nil means defaults (MaxBytes DefaultMaxBytes).
	Client *fetch.Client
	// MaxAge of a downloaded copy; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Timeout of one query; 0 means DefaultTimeout.
	Timeout time.Duration
	// Dir keeps downloaded copies; "" means a temporary directory removed
	// by Close.
	Dir string
	// Seen is the data date of objects without last-modified; zero means
	// the file's modification time or the server's Last-Modified.
	Seen time.Time
	Note string
	// MaxOrgASNs and MaxUntied: see DefaultMaxOrgASNs and DefaultMaxUntied.
	MaxOrgASNs, MaxUntied int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// What a file holds, from its name: the RIRs' split files are named
// <registry>.db.<class>[.gz]; anything else may hold every class.
type fileKind int

const (
	identityFile fileKind = 1 << iota
	resourceFile
	anyFile = identityFile | resourceFile
)

var splitName = regexp.MustCompile(`\.db\.(inetnum|inet6num|aut-num|organisation|mntner)(\.|$)`)

func kindOf(name string) fileKind {
	m := splitName.FindStringSubmatch(path.Base(name))
	switch {
	case m == nil:
		return anyFile
	case m[1] == "inetnum" || m[1] == "inet6num":
		return resourceFile
	}
	return identityFile
}

// file is one dump and what is known of its current copy.
type file struct {
	input string // path or URL as configured
	url   bool
	kind  fileKind
	local string    // what is read: the path, or the downloaded copy
	date  time.Time // modification time or Last-Modified
	at    time.Time // when the copy was downloaded
	sha   string    // of the current copy, once read whole
	comp  fetch.Compression
	mod   time.Time // local file's modification time when sha was taken
}

// Source answers from one registry's dumps. It implements asn.Discoverer,
// asn.Follower, asn.Resolver, asn.Provenancer, asn.QueryTimeouter and
// io.Closer.
type Source struct {
	opts  Options
	cl    *fetch.Client
	mu    sync.Mutex // guards files, idx, idxErr, dir
	files []*file
	idx   *index
	// idxErr is the error of the last index build (what was read before
	// it is kept in idx).
	idxErr  error
	idxKey  string
	dir     string
	tempDir bool
}

var registryName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidRegistry reports whether name is a valid registry name: 1-32 of
// a-z, 0-9 and '-' (it names the evidence source whois:<name>).
func ValidRegistry(name string) bool { return registryName.MatchString(name) }

// New checks the options and that local files exist. Nothing is read yet:
// dumps are read on first use, so that a damaged dump makes the source
// incomplete rather than the configuration invalid.
func New(o Options) (*Source, error) {
	if !ValidRegistry(o.Registry) {
		return nil, fmt.Errorf("whois: invalid registry name %q (use a-z, 0-9, '-')", o.Registry)
	}
	if len(o.Dumps) == 0 {
		return nil, fmt.Errorf("whois:%s: no dumps", o.Registry)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxOrgASNs <= 0 {
		o.MaxOrgASNs = DefaultMaxOrgASNs
	}
	if o.MaxUntied <= 0 {
		o.MaxUntied = DefaultMaxUntied
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cl := fetch.Client{MaxBytes: DefaultMaxBytes, Timeout: o.Timeout}
	if o.Client != nil {
		cl = *o.Client
		if cl.MaxBytes == 0 {
			cl.MaxBytes = DefaultMaxBytes
		}
		if cl.Timeout == 0 {
			cl.Timeout = o.Timeout
		}
	}
	s := &Source{opts: o, cl: &cl, dir: o.Dir}
	for i, d := range o.Dumps {
		switch {
		case (d.Path == "") == (d.URL == ""):
			return nil, fmt.Errorf("whois:%s: dumps[%d]: set either a path or a URL", o.Registry, i)
		case d.Path != "":
			st, err := os.Stat(d.Path)
			if err != nil {
				return nil, fmt.Errorf("whois:%s: %w", o.Registry, err)
			}
			if st.IsDir() {
				return nil, fmt.Errorf("whois:%s: %s is a directory", o.Registry, d.Path)
			}
			s.files = append(s.files, &file{input: d.Path, kind: kindOf(d.Path), local: d.Path})
		default:
			if _, err := fetch.BaseURL(d.URL); err != nil {
				return nil, fmt.Errorf("whois:%s: dumps[%d]: %w", o.Registry, i, err)
			}
			s.files = append(s.files, &file{input: d.URL, url: true, kind: kindOf(d.URL)})
		}
	}
	return s, nil
}

// Name implements asn.Source.
func (s *Source) Name() string { return "whois:" + s.opts.Registry }

// QueryTimeout implements asn.QueryTimeouter: downloading and scanning
// whole dumps takes longer than a registry API query.
func (s *Source) QueryTimeout() time.Duration { return s.opts.Timeout }

// Close removes downloaded copies kept in a temporary directory.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tempDir && s.dir != "" {
		err := os.RemoveAll(s.dir)
		s.dir, s.tempDir = "", false
		for _, f := range s.files {
			if f.url {
				f.local = ""
			}
		}
		return err
	}
	return nil
}

// Provenance implements asn.Provenancer: every dump read so far.
func (s *Source) Provenance() []asn.Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []asn.Input
	for _, f := range s.files {
		if f.sha == "" {
			continue
		}
		note := "RIR whois dump (RPSL)"
		if f.comp != fetch.Plain {
			note += ", " + string(f.comp)
		}
		if !f.date.IsZero() {
			note += ", dated " + f.date.Format(time.RFC3339)
		}
		if s.opts.Note != "" {
			note += "; " + s.opts.Note
		}
		out = append(out, asn.Input{Source: s.Name(), Input: f.input, SHA256: f.sha, Note: note})
	}
	return out
}

// refresh makes every URL dump available locally (downloading it when it
// is missing or older than MaxAge) and records the files' dates. A failed
// download is returned; the previous copy, if any, is still used.
func (s *Source) refresh(ctx context.Context) ([]*file, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	var ready []*file
	for _, f := range s.files {
		if !f.url {
			st, err := os.Stat(f.local)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !st.ModTime().Equal(f.mod) {
				f.sha, f.mod = "", st.ModTime()
			}
			f.date = st.ModTime().UTC().Truncate(time.Second)
			ready = append(ready, f)
			continue
		}
		if f.local != "" && s.opts.Now().Sub(f.at) < s.opts.MaxAge {
			ready = append(ready, f)
			continue
		}
		if err := s.download(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.input, err))
			if f.local == "" {
				continue
			}
			// The previous copy is still read: a failed download loses
			// nothing that was there before.
		}
		ready = append(ready, f)
	}
	return ready, errors.Join(errs...)
}

// download fetches f into the download directory (a new copy replaces the
// old one only when it arrived whole).
func (s *Source) download(ctx context.Context, f *file) error {
	if s.dir == "" {
		d, err := os.MkdirTemp("", "asfence-whois-"+s.opts.Registry+"-")
		if err != nil {
			return err
		}
		s.dir, s.tempDir = d, true
	}
	base := path.Base(f.input)
	if base == "" || base == "/" || base == "." {
		base = "dump"
	}
	dst := filepath.Join(s.dir, fmt.Sprintf("%d-%s", indexOf(s.files, f), base))
	tmp, err := os.CreateTemp(s.dir, "download-*")
	if err != nil {
		return err
	}
	d, err := s.cl.Stream(ctx, f.input, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	f.local, f.at, f.sha = dst, s.opts.Now(), d.SHA256
	f.date = d.LastModified
	if f.date.IsZero() {
		f.date = f.at.UTC().Truncate(time.Second)
	}
	if st, err := os.Stat(dst); err == nil {
		f.mod = st.ModTime()
	}
	return nil
}

func indexOf(files []*file, f *file) int {
	for i, g := range files {
		if g == f {
			return i
		}
	}
	return -1
}

func (s *Source) date(f *file) time.Time {
	if !s.opts.Seen.IsZero() {
		return s.opts.Seen.UTC()
	}
	return f.date
}

// load returns the index of the identity objects, rebuilding it when a
// dump changed. The error says which dumps could not be read (wholly or
// in part); what was read is in the index.
func (s *Source) load(ctx context.Context) (*index, []*file, error) {
	ready, ferr := s.refresh(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	var key strings.Builder
	for _, f := range ready {
		if f.kind&identityFile != 0 {
			fmt.Fprintf(&key, "%s|%s|%s\n", f.local, f.mod, f.at)
		}
	}
	if s.idx == nil || s.idxKey != key.String() || s.idxErr != nil {
		x := newIndex()
		var errs []error
		for _, f := range ready {
			if f.kind&identityFile == 0 {
				continue
			}
			sha, comp, err := x.read(ctx, f.local, f.input, s.date(f))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if f.kind == identityFile || f.sha == "" {
				f.sha, f.comp = sha, comp
			}
		}
		s.idx, s.idxKey, s.idxErr = x, key.String(), errors.Join(errs...)
	}
	return s.idx, ready, errors.Join(ferr, s.idxErr)
}

// joinUnique joins errors, leaving out repeats (a combined dump that is
// damaged fails both when its identity objects and when its address
// objects are read).
func joinUnique(errs ...error) error {
	var out []error
	seen := map[string]bool{}
	var add func(error)
	add = func(e error) {
		if e == nil {
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				add(x)
			}
			return
		}
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	for _, e := range errs {
		add(e)
	}
	return errors.Join(out...)
}

func (s *Source) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("whois:%s: %w", s.opts.Registry, err)
}

func (s *Source) fact(n *autNum, detail string) asn.ASNFact {
	return asn.ASNFact{ASN: n.ASN, Name: n.Name, Evidence: asn.Evidence{Source: s.Name(), Detail: detail, Seen: n.Seen}}
}

// Discover implements asn.Discoverer: Follow from the target's seed ASNs.
func (s *Source) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	var seeds []uint32
	for _, a := range t.ActiveASNs() {
		seeds = append(seeds, a.ASN)
	}
	return s.Follow(ctx, t, seeds)
}

// Follow implements asn.Follower: the ASNs tied to the target through the
// organisations and maintainers of the known ASNs' aut-num objects, the
// organisations named like the target, and aut-nums named like it.
func (s *Source) Follow(ctx context.Context, t *asn.Target, known []uint32) ([]asn.ASNFact, error) {
	x, _, err := s.load(ctx)
	tt := x.ties(t, known, s.opts.MaxOrgASNs, s.opts.MaxUntied)
	return x.discover(tt, s.fact), s.wrap(err)
}

// Resolve implements asn.Resolver: how each known ASN is registered, and
// the address space registered to the target (see scan).
func (s *Source) Resolve(ctx context.Context, t *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	x, files, err := s.load(ctx)
	tt := x.ties(t, asns, s.opts.MaxOrgASNs, s.opts.MaxUntied)
	prefixes, serr := s.scan(ctx, x, tt, files)
	out.Prefixes = prefixes
	// After the scan, so that the maintainers' verdicts count the address
	// objects too.
	for _, a := range asns {
		if d, ok := x.describe(tt, a); ok {
			out.ASNs = append(out.ASNs, s.fact(x.autnums[a], d))
		}
	}
	return out, s.wrap(joinUnique(err, serr))
}
