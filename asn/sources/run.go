package sources

import (
	"context"
	"errors"
	"io"

	"github.com/asfence/asfence/asn"
)

// Resolve builds the sources of c, resolves the targets with them through
// eng (whose Sources and Timeout it sets), and closes the clients. It
// returns the names of the sources it asked, so callers can report the
// healthy ones too. A nil c means Default().
func Resolve(ctx context.Context, c *Config, targets []asn.Target, eng asn.Engine) (*asn.Snapshot, []string, error) {
	if c == nil {
		c = Default()
	}
	srcs, err := Build(c)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, s := range srcs {
			if cl, ok := s.(io.Closer); ok {
				_ = cl.Close()
			}
		}
	}()
	names := make([]string, 0, len(srcs))
	for _, s := range srcs {
		names = append(names, s.Name())
	}
	if len(srcs) == 0 {
		return nil, names, errors.New("sources: none configured: nothing to resolve from")
	}
	eng.Sources, eng.Timeout = srcs, c.Timeout
	snap, err := eng.Run(ctx, targets)
	return snap, names, err
}
