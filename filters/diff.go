package filters

import (
	"bytes"

	"github.com/rogpeppe/go-internal/diff"
)

// UnifiedDiff returns the unified diff (3 lines of context) that turns a
// into b, or "" when they are equal. It is the anchored diff of
// rogpeppe/go-internal (Go's own internal/diff): it anchors on lines that
// occur once in each file, runs in O(n log n), and gives readable hunks
// for sorted lists and large configuration files.
func UnifiedDiff(oldName, newName string, a, b []byte) string {
	d := diff.Diff(oldName, a, newName, b)
	// The library starts with a "diff OLD NEW" line as git does; the
	// unified format itself starts at "--- OLD".
	d = bytes.TrimPrefix(d, []byte("diff "+oldName+" "+newName+"\n"))
	return string(d)
}
