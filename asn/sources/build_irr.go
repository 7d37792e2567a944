package sources

import (
	"errors"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
)

// buildIRR creates the IRR whois clients.
func buildIRR(c *Config) ([]asn.Source, error) {
	if c.IRR == nil {
		return nil, nil
	}
	return nil, errors.New("sources.irr: not implemented yet")
}

// buildRPSLFile creates a source answering from a local RPSL file.
func buildRPSLFile(o files.Options) (asn.Source, error) {
	return nil, errors.New("rpsl files: not implemented yet")
}
