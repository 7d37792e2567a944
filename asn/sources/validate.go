package sources

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/whoisdump"
	"github.com/asfence/asfence/field"
)

// fileFormats are the formats a `files:` entry may have.
var fileFormats = []string{"ipverse", "cidr", "rpsl", "asnames"}

// tableFormats are the formats a `tables:` entry may have.
var tableFormats = []string{"mrt", "pfx2as", "ip2asn", "bgptools"}

var tableSourceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$`)

// Validate checks the sources block without touching the network or files.
// targets are the configured target names. The error, if any, is a
// field.List with paths relative to the block ("irr.servers[0].address").
func Validate(c *Config, targets []string) error {
	var l field.List
	p := &l
	if c.Timeout < 0 {
		p.Add("timeout", "must not be negative")
	}
	if c.IRR != nil {
		if len(c.IRR.Servers) == 0 {
			p.Add(field.Path("irr", "servers"), "at least one server is needed")
		}
		for i, s := range c.IRR.Servers {
			sp := field.Path("irr", "servers", i)
			if s.Address == "" {
				p.Add(field.Path(sp, "address"), "missing")
			} else if strings.Contains(s.Address, ":") {
				if _, _, err := net.SplitHostPort(s.Address); err != nil {
					p.Add(field.Path(sp, "address"), "invalid host:port %q", s.Address)
				}
			}
			for j, src := range s.Sources {
				if src == "" || strings.ContainsAny(src, " ,\r\n!") {
					p.Add(field.Path(sp, "sources", j), "invalid IRR source name %q", src)
				}
			}
			if s.Timeout < 0 {
				p.Add(field.Path(sp, "timeout"), "must not be negative")
			}
		}
		if c.IRR.MaxDepth < 0 {
			p.Add(field.Path("irr", "max_depth"), "must not be negative")
		}
	}
	for i, r := range c.RIR {
		pathOrURL(field.Path("rir", i), r.Path, r.URL, p)
	}
	for i, r := range c.RPKI {
		pathOrURL(field.Path("rpki", i), r.Path, r.URL, p)
	}
	registries := map[string]int{}
	for i, w := range c.Whois {
		wp := field.Path("whois", i)
		if !whoisdump.ValidRegistry(w.Registry) {
			p.Add(field.Path(wp, "registry"), "invalid registry name %q (use 1-32 of a-z, 0-9, '-', e.g. apnic)", w.Registry)
		} else if j, dup := registries[w.Registry]; dup {
			p.Add(field.Path(wp, "registry"), "registry %q is also whois[%d]: list all its dumps in one entry", w.Registry, j)
		} else {
			registries[w.Registry] = i
		}
		if len(w.Dumps) == 0 {
			p.Add(field.Path(wp, "dumps"), "at least one dump is needed")
		}
		for j, d := range w.Dumps {
			pathOrURL(field.Path(wp, "dumps", j), d.Path, d.URL, p)
		}
		if w.MaxAge < 0 {
			p.Add(field.Path(wp, "max_age"), "must not be negative")
		}
		if w.Timeout < 0 {
			p.Add(field.Path(wp, "timeout"), "must not be negative")
		}
	}
	if c.RDAP != nil {
		httpURL(field.Path("rdap", "base_url"), c.RDAP.BaseURL, true, p)
	}
	if c.RIPEstat != nil {
		httpURL(field.Path("ripestat", "base_url"), c.RIPEstat.BaseURL, false, p)
	}
	if c.PeeringDB != nil {
		httpURL(field.Path("peeringdb", "base_url"), c.PeeringDB.BaseURL, false, p)
	}
	validateTables(c, p)
	for i, f := range c.Files {
		fp := field.Path("files", i)
		if !slices.Contains(fileFormats, f.Format) {
			p.Add(field.Path(fp, "format"), "unknown format %q (use %s)", f.Format, strings.Join(fileFormats, ", "))
		}
		if f.Path == "" {
			p.Add(field.Path(fp, "path"), "missing")
		}
		if f.Format == "cidr" && (f.Target == "") == (f.ASN == 0) {
			p.Add(fp, "a cidr list needs either target (the target it belongs to) or asn (the origin of all its prefixes)")
		}
		if f.Target != "" && !slices.Contains(targets, f.Target) {
			p.Add(field.Path(fp, "target"), "unknown target %q", f.Target)
		}
		if f.Kind != "" && !slices.Contains(asn.FileKinds, asn.Kind(f.Kind)) {
			p.Add(field.Path(fp, "kind"), "unknown kind %q (use %s)", f.Kind, kindList(asn.FileKinds))
		}
	}
	return l.Err()
}

func kindList(ks []asn.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func validateTables(c *Config, p *field.List) {
	sources := map[string]int{}
	for i, tc := range c.Tables {
		tp := field.Path("tables", i)
		if !slices.Contains(tableFormats, tc.Format) {
			p.Add(field.Path(tp, "format"), "unknown format %q (use %s)", tc.Format, strings.Join(tableFormats, ", "))
		}
		pathOrURL(tp, tc.Path, tc.URL, p)
		if tc.Source != "" && !tableSourceRE.MatchString(tc.Source) {
			p.Add(field.Path(tp, "source"), "invalid source name %q (1-64 of letters, digits, '.', '_', ':', '/', '-')", tc.Source)
		}
		name := tc.Source
		if name == "" {
			name = tc.Format + ":" + tc.Path + tc.URL
		}
		if j, dup := sources[name]; dup {
			p.Add(field.Path(tp, "source"), "the same source as tables[%d]: give each table its own source name", j)
		}
		sources[name] = i
		if tc.Timeout < 0 {
			p.Add(field.Path(tp, "timeout"), "must not be negative")
		}
		if strings.ContainsAny(tc.UserAgent, "\r\n") {
			p.Add(field.Path(tp, "user_agent"), "must be one line")
		}
		if u, err := url.Parse(tc.URL); tc.URL != "" && err == nil && strings.EqualFold(u.Hostname(), "bgp.tools") && tc.UserAgent == "" {
			p.Add(field.Path(tp, "user_agent"), "bgp.tools asks every client for a User-Agent naming it and a contact, e.g. \"example-net asfence - noc@example.net\"")
		}
	}
}

func pathOrURL(path, file, u string, p *field.List) {
	switch {
	case file == "" && u == "":
		p.Add(path, "set path or url")
	case file != "" && u != "":
		p.Add(path, "set path or url, not both")
	case u != "":
		httpURL(field.Path(path, "url"), u, true, p)
	}
}

func httpURL(path, s string, required bool, p *field.List) {
	if s == "" {
		if required {
			p.Add(path, "missing")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(path, "invalid URL %q (want http:// or https://)", s)
	}
}
