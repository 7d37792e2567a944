package sources

import (
	"errors"

	"github.com/asfence/asfence/asn"
)

// buildRegistries creates the RIR stats, RDAP, RIPEstat, PeeringDB and RPKI
// clients.
func buildRegistries(c *Config) ([]asn.Source, error) {
	if len(c.RIR) == 0 && c.RDAP == nil && c.RIPEstat == nil && c.PeeringDB == nil && len(c.RPKI) == 0 {
		return nil, nil
	}
	return nil, errors.New("sources: rir/rdap/ripestat/peeringdb/rpki not implemented yet")
}
