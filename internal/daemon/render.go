package daemon

import (
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/policy"
)

// renderVendors renders the Intent once per configured vendor.
func renderVendors(in *policy.Intent, cfg *config.Config, version string) []rendered {
	p := filters.Prepare(in)
	var out []rendered
	for _, v := range cfg.Outputs.Vendors {
		data, err := p.Render(cfg.RenderOptions(v, version, "asfence run --config "+cfg.Path))
		out = append(out, rendered{vendor: v, file: filters.FileName(v), data: data, err: err})
	}
	return out
}

// unifiedDiff is the diff of two versions of a file.
func unifiedDiff(oldName, newName string, a, b []byte) string {
	return filters.UnifiedDiff(oldName, newName, a, b)
}
