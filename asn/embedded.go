package asn

import (
	_ "embed"
)

// The default snapshot, built by `make snapshot` from asn/data/inputs (see
// asn/data/inputs/PROVENANCE.md) and compiled in so that asfence works
// offline on day one.
//
//go:embed data/default.json
var embeddedSnapshot []byte

// EmbeddedSnapshotName names the embedded snapshot in errors and evidence.
const EmbeddedSnapshotName = "embedded snapshot"

// Embedded returns a fresh copy of the embedded default snapshot.
func Embedded() (*Snapshot, error) {
	return DecodeSnapshot(EmbeddedSnapshotName, embeddedSnapshot)
}
