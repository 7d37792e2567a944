package sources

import (
	"fmt"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
	"github.com/asfence/asfence/asn/peeringdb"
	"github.com/asfence/asfence/asn/rdap"
	"github.com/asfence/asfence/asn/ripestat"
	"github.com/asfence/asfence/asn/rir"
	"github.com/asfence/asfence/asn/rpki"
)

// requestTimeout bounds one HTTP request: the configured per-source
// timeout, or def.
func requestTimeout(c *Config, def time.Duration) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return def
}

// buildRegistries creates the RIR stats, RDAP, RIPEstat, PeeringDB and RPKI
// clients. Local files (RIR stats, VRP exports, the PeeringDB key) are read
// here, so a bad file is reported before any network query.
func buildRegistries(c *Config) ([]asn.Source, error) {
	var out []asn.Source
	// API answers are small; statistics files and VRP exports are tens of
	// megabytes and get longer by default.
	client := func() *fetch.Client { return &fetch.Client{Timeout: requestTimeout(c, fetch.DefaultTimeout)} }
	download := func() *fetch.Client { return &fetch.Client{Timeout: requestTimeout(c, 2*fetch.DefaultTimeout)} }
	for i, r := range c.RIR {
		s, err := rir.New(rir.Options{Path: r.Path, URL: r.URL, Client: download()})
		if err != nil {
			return nil, fmt.Errorf("sources.rir[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	if c.RDAP != nil {
		s, err := rdap.New(rdap.Options{BaseURL: c.RDAP.BaseURL, Client: client()})
		if err != nil {
			return nil, fmt.Errorf("sources.rdap: %w", err)
		}
		out = append(out, s)
	}
	if c.RIPEstat != nil {
		s, err := ripestat.New(ripestat.Options{BaseURL: c.RIPEstat.BaseURL, SourceApp: c.RIPEstat.SourceApp, Client: client()})
		if err != nil {
			return nil, fmt.Errorf("sources.ripestat: %w", err)
		}
		out = append(out, s)
	}
	if c.PeeringDB != nil {
		s, err := peeringdb.New(peeringdb.Options{BaseURL: c.PeeringDB.BaseURL, APIKeyFile: c.PeeringDB.APIKeyFile, Client: client()})
		if err != nil {
			return nil, fmt.Errorf("sources.peeringdb: %w", err)
		}
		out = append(out, s)
	}
	for i, r := range c.RPKI {
		s, err := rpki.New(rpki.Options{Path: r.Path, URL: r.URL, Client: download()})
		if err != nil {
			return nil, fmt.Errorf("sources.rpki[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
