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
	Whois     []WhoisConfig    `yaml:"whois"`
	Files     []FileConfig     `yaml:"files"`
	Tables    []TableConfig    `yaml:"tables"`
	// CacheDir keeps downloaded routing tables between runs (default: the
	// user's cache directory, asfence/tables under it).
	CacheDir string `yaml:"cache_dir"`
}

// TableConfig: a routing table, by path or URL, plain or compressed
// (gzip, bzip2, xz): an MRT RIB dump or update file (RIPE RIS, RouteViews),
// CAIDA's RouteViews prefix2as, an IP-range table (iptoasn TSV,
// ip-location-db CSV) or bgp.tools' table.jsonl.
type TableConfig struct {
	// Format: mrt, pfx2as, ip2asn or bgptools.
	Format string `yaml:"format"`
	Path   string `yaml:"path"`
	URL    string `yaml:"url"`
	// Source names the table in evidence as table:<source> (default
	// <format>:<file name>).
	Source string `yaml:"source"`
	// Seen is the data date recorded as evidence for formats without times
	// (all but mrt; default: file mtime or download time).
	Seen time.Time `yaml:"seen"`
	Note string    `yaml:"note"`
	// UserAgent is sent when downloading; bgp.tools asks for one that
	// names you and a contact.
	UserAgent string `yaml:"user_agent"`
	// Timeout bounds downloading and reading the table (default 15m).
	Timeout time.Duration `yaml:"timeout"`
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

// WhoisConfig: one registry's whois database dumps (RPSL bulk files such as
// apnic.db.inetnum.gz), read for registrations: which organisations and
// maintainers are a target's, and the inetnum/inet6num objects registered
// to them.
type WhoisConfig struct {
	// Registry names the evidence source, whois:<registry> (apnic, ripe,
	// afrinic, lacnic, ...).
	Registry string `yaml:"registry"`
	// Dumps are the files, each a path or a URL: the RIRs' split files
	// (<registry>.db.<class>[.gz]) or combined dumps; gzip and bzip2 are
	// recognised by their magic bytes.
	Dumps []DumpConfig `yaml:"dumps"`
	// MaxAge of a downloaded copy before it is fetched again (default 12h).
	MaxAge time.Duration `yaml:"max_age"`
	// Timeout bounds one query of this registry, downloads and scans
	// included (default 30m; sources.timeout applies if longer).
	Timeout time.Duration `yaml:"timeout"`
	// DownloadDir keeps downloaded dumps (default: a temporary directory,
	// removed when asfence exits).
	DownloadDir string `yaml:"download_dir"`
}

// DumpConfig: one dump file, by path or URL.
type DumpConfig struct {
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
	// Kind is the kind of source the file is (asn-list, range-list,
	// cloud-ranges, ...): what policy.min_sources counts and
	// policy.exclude_sources may name. Default: asn-list for ipverse and
	// cidr lists of an ASN, range-list for cidr lists of a target,
	// irr-route for rpsl, names for asnames.
	Kind string `yaml:"kind"`
	// Seen is the data date recorded as evidence (default: file mtime).
	Seen time.Time `yaml:"seen"`
	Note string    `yaml:"note"`
}
