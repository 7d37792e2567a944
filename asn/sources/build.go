package sources

import (
	"fmt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/internal/fetch"
	"github.com/asfence/asfence/asn/tables"
)

// Build creates the sources listed in the config. File sources are read
// here, so a bad file is reported before any network query.
func Build(c *Config) ([]asn.Source, error) {
	var out []asn.Source
	irr, err := buildIRR(c)
	if err != nil {
		return nil, err
	}
	out = append(out, irr...)
	web, err := buildRegistries(c)
	if err != nil {
		return nil, err
	}
	out = append(out, web...)
	whois, err := buildWhois(c)
	if err != nil {
		return nil, err
	}
	out = append(out, whois...)
	for i, f := range c.Files {
		o := files.Options{Path: f.Path, Source: f.Source, Seen: f.Seen, Note: f.Note, Target: f.Target, ASN: f.ASN, Kind: asn.Kind(f.Kind)}
		var s asn.Source
		var err error
		switch f.Format {
		case "ipverse":
			s, err = files.NewIPverse(o)
		case "cidr":
			s, err = files.NewCIDR(o)
		case "asnames":
			s, err = files.NewASNames(o)
		case "rpsl":
			s, err = buildRPSLFile(o)
		default:
			err = fmt.Errorf("unknown format %q", f.Format)
		}
		if err != nil {
			return nil, fmt.Errorf("sources.files[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	for i, tc := range c.Tables {
		s, err := tables.New(tables.Options{Format: tables.Format(tc.Format), Path: tc.Path, URL: tc.URL, Source: tc.Source,
			Seen: tc.Seen, Note: tc.Note, CacheDir: c.CacheDir, Timeout: tc.Timeout,
			Client: &fetch.Client{Timeout: requestTimeout(c, 2*fetch.DefaultTimeout), UserAgent: tc.UserAgent}})
		if err != nil {
			return nil, fmt.Errorf("sources.tables[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
