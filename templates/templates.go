// Package templates holds the text/template files that asfence renders
// vendor router configuration from, one file per vendor ID
// ("<vendor>.tmpl"), and for vendors whose lists can be changed in place
// one more for the incremental commands ("<vendor>.incremental.tmpl").
// They are compiled in; the config's templates_dir may hold files of the
// same names that replace them. Which vendor uses which file is in the
// vendor table of package filters.
//
// A full template receives filters.TemplateData: route-filter entries
// (filters.Entry) and coverage prefixes (filters.AddrEntry) whose text
// forms come from validated netip values, names as validated identifiers,
// header lines already sanitised for a comment. A range over those lists
// whose body is simple (see filters/fastrange.go) runs as compiled code
// with the same output. An
// incremental template receives filters.IncrementalData (each list of the
// old and the new file and what was added and removed) and may call
// fullReplace "reason" for a change the platform cannot apply in place.
// Each file says in a comment where its syntax comes from (vendor
// documentation, bgpq4's reference outputs).
package templates

import (
	"embed"
	"io/fs"
)

//go:embed *.tmpl
var files embed.FS

// FS returns the embedded template files.
func FS() fs.FS { return files }
