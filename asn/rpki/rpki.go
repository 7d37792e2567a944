// Package rpki reads validated ROA payloads (VRPs) exported as JSON by
// rpki-client (`-j`, "asn": 13335) or Routinator (`--format json`,
// "asn": "AS13335"), and returns the prefixes a target's ASNs are
// authorised to originate.
package rpki

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// DefaultMaxBytes bounds an export (a full VRP set is around 50 MB).
const DefaultMaxBytes = 256 << 20

// VRP is one validated ROA payload.
type VRP struct {
	ASN       uint32
	Prefix    netip.Prefix
	MaxLength int
	// TA is the trust anchor (rpki-client and Routinator both say "ta").
	TA string
}

// Set is a parsed VRP export.
type Set struct {
	// Generated is when the validator produced the export (zero if the
	// export does not say).
	Generated time.Time
	Count     int
	byASN     map[uint32][]VRP
}

// Origins returns the VRPs of one ASN.
func (s *Set) Origins(a uint32) []VRP { return s.byASN[a] }

type vrpJSON struct {
	ASN       json.RawMessage `json:"asn"`
	Prefix    *string         `json:"prefix"`
	MaxLength *int            `json:"maxLength"`
	TA        string          `json:"ta"`
}

type metaJSON struct {
	BuildTime     string `json:"buildtime"`     // rpki-client
	GeneratedTime string `json:"generatedTime"` // Routinator
}

// Parse reads a VRP export. The "roas" list must be present and not empty
// (an empty export is a validator that has not finished, not "no ROAs").
// Any malformed entry is an error naming it.
func Parse(data []byte) (*Set, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	at := func(err error) error {
		line, col := fetch.Position(data, dec.InputOffset())
		return fmt.Errorf("line %d column %d: %w", line, col, err)
	}
	tok, err := token(dec)
	if err != nil || tok != json.Delim('{') {
		if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' {
			first, _, _ := bytes.Cut(t, []byte("\n"))
			if len(first) > 60 {
				first = first[:60]
			}
			return nil, fmt.Errorf("not a JSON VRP export (starts with %q)", first)
		}
		return nil, at(errors.New("want a JSON object with a \"roas\" list"))
	}
	s := &Set{byASN: map[uint32][]VRP{}}
	sawROAs := false
	for dec.More() {
		kt, err := token(dec)
		if err != nil {
			return nil, at(err)
		}
		key, _ := kt.(string)
		switch key {
		case "metadata":
			var m metaJSON
			if err := decode(dec, &m); err != nil {
				return nil, at(fmt.Errorf("metadata: %w", err))
			}
			for _, v := range []string{m.BuildTime, m.GeneratedTime} {
				// Routinator's tests write the epoch for "unknown".
				if t, err := time.Parse(time.RFC3339, v); err == nil && t.Unix() > 0 {
					s.Generated = t.UTC()
					break
				}
			}
		case "roas":
			sawROAs = true
			if t, err := token(dec); err != nil || t != json.Delim('[') {
				return nil, at(errors.New(`"roas" is not a list`))
			}
			for i := 0; dec.More(); i++ {
				var j vrpJSON
				if err := decode(dec, &j); err != nil {
					return nil, at(fmt.Errorf("roas[%d]: %w", i, err))
				}
				v, err := j.vrp()
				if err != nil {
					return nil, at(fmt.Errorf("roas[%d]: %w", i, err))
				}
				s.byASN[v.ASN] = append(s.byASN[v.ASN], v)
				s.Count++
			}
			if _, err := token(dec); err != nil {
				return nil, at(err)
			}
		default:
			// bgpsec_keys, aspas, routerKeys, ...: not used.
			var skip json.RawMessage
			if err := decode(dec, &skip); err != nil {
				return nil, at(fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	if _, err := token(dec); err != nil {
		return nil, at(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, at(errors.New("data after the end of the JSON object"))
	}
	if !sawROAs {
		return nil, errors.New(`no "roas" list: not an rpki-client or Routinator VRP export`)
	}
	if s.Count == 0 {
		return nil, errors.New(`"roas" is empty: the validator has produced no VRPs (not finished its first run?)`)
	}
	return s, nil
}

// token and decode read from dec; the decoder says "EOF" for a cut-off
// file, so say what that means.
func token(dec *json.Decoder) (json.Token, error) {
	t, err := dec.Token()
	return t, eofError(err)
}

func decode(dec *json.Decoder, v any) error { return eofError(dec.Decode(v)) }

func eofError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of the export (truncated?)")
	}
	return err
}

func (j *vrpJSON) vrp() (VRP, error) {
	a, err := parseASN(j.ASN)
	if err != nil {
		return VRP{}, err
	}
	if j.Prefix == nil || j.MaxLength == nil {
		return VRP{}, errors.New(`want "asn", "prefix" and "maxLength"`)
	}
	p, err := asn.ParsePrefix(*j.Prefix)
	if err != nil {
		return VRP{}, err
	}
	if ml := *j.MaxLength; ml < p.Bits() || ml > p.Addr().BitLen() {
		return VRP{}, fmt.Errorf("maxLength %d outside %d-%d for %s", ml, p.Bits(), p.Addr().BitLen(), p)
	}
	return VRP{ASN: a, Prefix: p, MaxLength: *j.MaxLength, TA: j.TA}, nil
}

// parseASN accepts 13335, "AS13335" and "13335".
func parseASN(raw json.RawMessage) (uint32, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, errors.New(`missing "asn"`)
	}
	if s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimPrefix(strings.ToUpper(s), "AS")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid asn %s", raw)
	}
	return uint32(v), nil
}

// Options describe one VRP export.
type Options struct {
	// Path or URL of the export (exactly one); e.g. rpki-client's
	// /var/db/rpki-client/json or Routinator's http://host:8323/json.
	Path string
	URL  string
	// Client fetches URLs; nil means defaults (MaxBytes DefaultMaxBytes).
	Client *fetch.Client
	// MaxAge of a downloaded copy (default 1h).
	MaxAge time.Duration
}

// Source answers from a VRP export. It implements asn.Resolver and
// asn.Provenancer.
type Source struct {
	input string
	set   *fetch.Cached[*Set]
}

// New creates the source; a local file is read and checked now.
func New(o Options) (*Source, error) {
	if (o.Path == "") == (o.URL == "") {
		return nil, errors.New("rpki: set either a path or a URL")
	}
	cl := fetch.Client{MaxBytes: DefaultMaxBytes}
	if o.Client != nil {
		cl = *o.Client
		if cl.MaxBytes == 0 {
			cl.MaxBytes = DefaultMaxBytes
		}
	}
	s := &Source{input: o.Path + o.URL}
	s.set = &fetch.Cached[*Set]{Path: o.Path, URL: o.URL, Client: &cl, MaxAge: o.MaxAge,
		Parse: func(d fetch.Doc) (*Set, error) { return Parse(d.Data) }}
	if o.Path != "" {
		if _, err := s.load(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name implements asn.Source.
func (s *Source) Name() string { return "rpki:" + s.input }

func (s *Source) load(ctx context.Context) (*Set, error) {
	v, _, err := s.set.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("rpki %s: %w", s.input, err)
	}
	return v, nil
}

// Provenance implements asn.Provenancer (nothing before a URL is fetched).
func (s *Source) Provenance() []asn.Input {
	v, d, ok := s.set.Loaded()
	if !ok {
		return nil
	}
	note := fmt.Sprintf("VRP export, %d VRPs", v.Count)
	if !v.Generated.IsZero() {
		note += ", generated " + v.Generated.Format(time.RFC3339)
	}
	return []asn.Input{{Source: "rpki", Input: d.Input, SHA256: d.SHA256, Note: note}}
}

// Resolve returns the prefixes the target's ASNs hold ROAs for, each with
// the ROA's ASN as origin.
func (s *Source) Resolve(ctx context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	var out asn.Facts
	set, err := s.load(ctx)
	if err != nil {
		return out, err
	}
	seen := set.Generated
	if seen.IsZero() {
		_, d, _ := s.set.Loaded()
		seen = d.Time
	}
	for _, a := range asns {
		for _, v := range set.Origins(a) {
			detail := fmt.Sprintf("ROA AS%d maxLength %d", v.ASN, v.MaxLength)
			if v.TA != "" {
				detail += " (" + v.TA + ")"
			}
			out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: v.Prefix, Origin: a,
				Evidence: asn.Evidence{Source: "rpki", Detail: detail, Seen: seen}})
		}
	}
	return out, nil
}
