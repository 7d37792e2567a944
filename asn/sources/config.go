// Package sources builds the registry clients named in the `sources:` block
// of the config file.
package sources

import "time"

// Config is the `sources:` block. With it present, exactly the sources it
// lists are used; without it, asfence works from the embedded snapshot.
type Config struct {
	// Timeout bounds each source query per target (default 60s).
	Timeout   time.Duration    `yaml:"timeout"`
	IRR       *IRRConfig       `yaml:"irr"`
	RIR       []RIRConfig      `yaml:"rir"`
	RDAP      *RDAPConfig      `yaml:"rdap"`
	RIPEstat  *RIPEstatConfig  `yaml:"ripestat"`
	PeeringDB *PeeringDBConfig `yaml:"peeringdb"`
	RPKI      []RPKIConfig     `yaml:"rpki"`
	Files     []FileConfig     `yaml:"files"`
}

// IRRConfig: IRRd whois servers (RADB, RIPE, NTTCOM, ...).
type IRRConfig struct {
	Servers []IRRServer `yaml:"servers"`
	// MaxDepth limits AS-SET recursion (default 10).
	MaxDepth int `yaml:"max_depth"`
	// ServerSideRecursion asks the server to expand sets (!iSET,1) instead
	// of expanding member by member (which records the path as evidence).
	ServerSideRecursion bool `yaml:"server_side_recursion"`
}

// IRRServer is one IRRd whois server.
type IRRServer struct {
	// Address is host:port (port 43 if omitted).
	Address string `yaml:"address"`
	// Sources restricts the databases queried (!s), in priority order.
	Sources []string      `yaml:"sources"`
	Timeout time.Duration `yaml:"timeout"`
}

// RIRConfig: one RIR delegated(-extended) statistics file, by path or URL.
type RIRConfig struct {
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
}

// RDAPConfig: RDAP base URL (e.g. https://rdap.apnic.net/ or a bootstrap
// redirector such as https://rdap.org/).
type RDAPConfig struct {
	BaseURL string `yaml:"base_url"`
}

// RIPEstatConfig: RIPEstat Data API.
type RIPEstatConfig struct {
	BaseURL string `yaml:"base_url"`
	// SourceApp is sent as sourceapp=, as RIPEstat asks of regular users.
	SourceApp string `yaml:"source_app"`
}

// PeeringDBConfig: PeeringDB API.
type PeeringDBConfig struct {
	BaseURL    string `yaml:"base_url"`
	APIKeyFile string `yaml:"api_key_file"`
}

// RPKIConfig: a VRP JSON export (rpki-client or Routinator), by path or URL.
type RPKIConfig struct {
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
}

// FileConfig: a local data file in one of the shared formats.
type FileConfig struct {
	// Format: ipverse (per-ASN JSON), cidr (plain prefix list), rpsl (RPSL
	// objects), asnames (potaroo-style "ASN<TAB>NAME" list).
	Format string `yaml:"format"`
	Path   string `yaml:"path"`
	// Target attributes a cidr list to one target (it carries no origins).
	Target string `yaml:"target"`
	// ASN is the origin of every prefix in a cidr list (a per-ASN list): the
	// list then goes to whichever target holds that ASN.
	ASN uint32 `yaml:"asn"`
	// Source overrides the evidence source name (default file:<format>).
	Source string `yaml:"source"`
	// Seen is the data date recorded as evidence (default: file mtime).
	Seen time.Time `yaml:"seen"`
	Note string    `yaml:"note"`
}
