package sources

import (
	"fmt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
	"github.com/asfence/asfence/asn/whoisdump"
)

// buildWhois creates one source per registry's whois dumps. Local dumps
// must exist; nothing is read until the first query (a damaged dump makes
// the source incomplete, not the config invalid).
func buildWhois(c *Config) ([]asn.Source, error) {
	var out []asn.Source
	for i, w := range c.Whois {
		o := whoisdump.Options{Registry: w.Registry, MaxAge: w.MaxAge, Timeout: w.Timeout, Dir: w.DownloadDir}
		if o.Timeout == 0 {
			o.Timeout = whoisdump.DefaultTimeout
		}
		o.Client = &fetch.Client{Timeout: o.Timeout}
		for _, d := range w.Dumps {
			o.Dumps = append(o.Dumps, whoisdump.Dump{Path: d.Path, URL: d.URL})
		}
		s, err := whoisdump.New(o)
		if err != nil {
			return nil, fmt.Errorf("sources.whois[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
