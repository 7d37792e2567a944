package sources

import (
	"fmt"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/irr"
)

// buildIRR creates one IRR whois client per server. Each is its own
// source ("irr:<host:port>"), so a failed server is its own incomplete
// entry and the others still count.
func buildIRR(c *Config) ([]asn.Source, error) {
	if c.IRR == nil {
		return nil, nil
	}
	var out []asn.Source
	for i, s := range c.IRR.Servers {
		cl, err := irr.New(irr.Config{
			Address:             s.Address,
			Sources:             append([]string(nil), s.Sources...),
			Timeout:             s.Timeout,
			MaxDepth:            c.IRR.MaxDepth,
			ServerSideRecursion: c.IRR.ServerSideRecursion,
		})
		if err != nil {
			return nil, fmt.Errorf("sources.irr.servers[%d]: %w", i, err)
		}
		out = append(out, cl)
	}
	return out, nil
}

// buildRPSLFile creates a source answering from a local RPSL file.
func buildRPSLFile(o files.Options) (asn.Source, error) {
	return irr.NewFile(o)
}
