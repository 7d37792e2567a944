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

// Input says where a resolve's data comes from: a snapshot file, the
// embedded snapshot (Offline) or the configured sources.
type Input struct {
	SnapshotFile string
	Offline      bool
}

// Stored reports whether the data comes from a snapshot, not the network.
func (in Input) Stored() bool { return in.SnapshotFile != "" || in.Offline }

// Name is the snapshot's source name in run records ("file:<path>" or
// the embedded snapshot's name).
func (in Input) Name() string {
	if in.SnapshotFile != "" {
		return "file:" + in.SnapshotFile
	}
	return asn.EmbeddedSnapshotName
}

// Load produces the targets' snapshot from in: a stored snapshot narrowed
// to targets, or Resolve with c. It returns the names of the sources it
// used; err as Resolve's (a stored snapshot that cannot be read is an error
// with a nil snapshot).
func Load(ctx context.Context, in Input, c *Config, targets []asn.Target, eng asn.Engine) (*asn.Snapshot, []string, error) {
	if !in.Stored() {
		return Resolve(ctx, c, targets, eng)
	}
	var s *asn.Snapshot
	var err error
	if in.SnapshotFile != "" {
		s, err = asn.ReadSnapshotFile(in.SnapshotFile)
	} else {
		s, err = asn.Embedded()
	}
	if err != nil {
		return nil, []string{in.Name()}, err
	}
	return asn.Select(s, targets), []string{in.Name()}, nil
}
