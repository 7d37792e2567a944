package sources

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/asfence/asfence/internal/check"
)

// fileFormats are the formats a `files:` entry may have.
var fileFormats = []string{"ipverse", "cidr", "rpsl", "asnames"}

// Validate checks the sources block without touching the network or files.
func Validate(c *Config, path string, targets []string, p *check.Problems) {
	if c.Timeout < 0 {
		p.Add(check.Join(path, "timeout"), "must not be negative")
	}
	if c.IRR != nil {
		if len(c.IRR.Servers) == 0 {
			p.Add(check.Join(path, "irr", "servers"), "at least one server is needed")
		}
		for i, s := range c.IRR.Servers {
			sp := check.Join(path, "irr", "servers", i)
			if s.Address == "" {
				p.Add(check.Join(sp, "address"), "missing")
			} else if strings.Contains(s.Address, ":") {
				if _, _, err := net.SplitHostPort(s.Address); err != nil {
					p.Add(check.Join(sp, "address"), "invalid host:port %q", s.Address)
				}
			}
			for j, src := range s.Sources {
				if src == "" || strings.ContainsAny(src, " ,\r\n!") {
					p.Add(check.Join(sp, "sources", j), "invalid IRR source name %q", src)
				}
			}
			if s.Timeout < 0 {
				p.Add(check.Join(sp, "timeout"), "must not be negative")
			}
		}
		if c.IRR.MaxDepth < 0 {
			p.Add(check.Join(path, "irr", "max_depth"), "must not be negative")
		}
	}
	for i, r := range c.RIR {
		pathOrURL(check.Join(path, "rir", i), r.Path, r.URL, p)
	}
	for i, r := range c.RPKI {
		pathOrURL(check.Join(path, "rpki", i), r.Path, r.URL, p)
	}
	if c.RDAP != nil {
		httpURL(check.Join(path, "rdap", "base_url"), c.RDAP.BaseURL, true, p)
	}
	if c.RIPEstat != nil {
		httpURL(check.Join(path, "ripestat", "base_url"), c.RIPEstat.BaseURL, false, p)
	}
	if c.PeeringDB != nil {
		httpURL(check.Join(path, "peeringdb", "base_url"), c.PeeringDB.BaseURL, false, p)
	}
	for i, f := range c.Files {
		fp := check.Join(path, "files", i)
		if !slices.Contains(fileFormats, f.Format) {
			p.Add(check.Join(fp, "format"), "unknown format %q (use %s)", f.Format, strings.Join(fileFormats, ", "))
		}
		if f.Path == "" {
			p.Add(check.Join(fp, "path"), "missing")
		}
		if f.Format == "cidr" && (f.Target == "") == (f.ASN == 0) {
			p.Add(fp, "a cidr list needs either target (the target it belongs to) or asn (the origin of all its prefixes)")
		}
		if f.Target != "" && !slices.Contains(targets, f.Target) {
			p.Add(check.Join(fp, "target"), "unknown target %q", f.Target)
		}
	}
}

func pathOrURL(path, file, u string, p *check.Problems) {
	switch {
	case file == "" && u == "":
		p.Add(path, "set path or url")
	case file != "" && u != "":
		p.Add(path, "set path or url, not both")
	case u != "":
		httpURL(check.Join(path, "url"), u, true, p)
	}
}

func httpURL(path, s string, required bool, p *check.Problems) {
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
