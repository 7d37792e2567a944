package filters

import (
	"regexp"

	"github.com/asfence/asfence/field"
)

// OutputConfig is the `outputs:` block: which vendor files the daemon
// writes, list names, and per-vendor capacity limits.
type OutputConfig struct {
	// Vendors written by the daemon after each applied run (default: none).
	Vendors []string `yaml:"vendors"`
	Names   Names    `yaml:"names"`
	// MaxEntries caps the entries of one generated list, per vendor ID
	// ("default" applies to all others); over it, generation fails.
	MaxEntries map[string]int `yaml:"max_entries"`
}

// Names are the object names used in generated configs.
type Names struct {
	PrefixV4 string `yaml:"prefix_v4"`
	PrefixV6 string `yaml:"prefix_v6"`
	ASPath   string `yaml:"as_path"`
	Policy   string `yaml:"policy"`
	ACLV4    string `yaml:"acl_v4"`
	ACLV6    string `yaml:"acl_v6"`
}

// DefaultNames are safe on every platform (letters, digits, '-', '_').
var DefaultNames = Names{
	PrefixV4: "ASFENCE-V4",
	PrefixV6: "ASFENCE-V6",
	ASPath:   "ASFENCE-ORIGINS",
	Policy:   "ASFENCE-REJECT",
	ACLV4:    "ASFENCE-ACL-V4",
	ACLV6:    "ASFENCE-ACL-V6",
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,47}$`)

// WithDefaults fills unset names.
func (n Names) WithDefaults() Names {
	d := DefaultNames
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&d.PrefixV4, n.PrefixV4}, {&d.PrefixV6, n.PrefixV6}, {&d.ASPath, n.ASPath},
		{&d.Policy, n.Policy}, {&d.ACLV4, n.ACLV4}, {&d.ACLV6, n.ACLV6},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return d
}

// Validate checks names (they end up unquoted in router configs). The
// error, if any, is a field.List with paths relative to the block.
func (c *OutputConfig) Validate() error {
	var p field.List
	for _, f := range []struct{ key, v string }{
		{"prefix_v4", c.Names.PrefixV4}, {"prefix_v6", c.Names.PrefixV6}, {"as_path", c.Names.ASPath},
		{"policy", c.Names.Policy}, {"acl_v4", c.Names.ACLV4}, {"acl_v6", c.Names.ACLV6},
	} {
		if f.v != "" && !nameRE.MatchString(f.v) {
			p.Add(field.Path("names", f.key), "invalid name %q (1-48 of A-Z a-z 0-9 - _, starting with a letter)", f.v)
		}
	}
	for k, v := range c.MaxEntries {
		if v < 0 {
			p.Add(field.Path("max_entries", k), "must be positive")
		}
	}
	return p.Err()
}
