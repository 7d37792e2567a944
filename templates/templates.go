// Package templates holds the text/template files that asfence renders
// vendor router configuration from, one file per vendor ID
// ("<vendor>.tmpl"). They are compiled in; the config's templates_dir may
// hold files of the same names that replace them.
//
// The data a template receives is filters.TemplateData: prefixes arrive as
// validated netip values and filters.Range entries, names as validated
// identifiers, header lines already sanitised for a comment.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed *.tmpl
var files embed.FS

// FS returns the embedded template files.
func FS() fs.FS { return files }
