package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
	"github.com/asfence/asfence/asn/rpsl"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/prefixtest"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// The prefix-list part of every vendor output bgpq4 also writes is
// compared with bgpq4's list for the same input: real route objects served
// by the test IRRd server to bgpq4 and read from the same files by asfence.
// Both lists are parsed into match semantics (prefix + length range) and
// must match exactly the same routes from a corpus that includes every
// registered prefix, its parent and children, host routes at its edges,
// and random more-specifics and neighbours.

var corpusFiles = []string{"testdata/filters/ripe-nonauth-route-sample.rpsl", "testdata/filters/ripe-nonauth-route6-sample.rpsl"}

// bgpq4Flags are the bgpq4 options that produce each vendor's list.
var bgpq4Flags = map[string][]string{
	"junos":       {"-J", "-z"}, // route-filter-list (a Junos prefix-list cannot express ranges)
	"cisco-ios":   {},
	"cisco-iosxr": {"-X"},
	"arista-eos":  {"-e"},
	"nokia-sros":  {"-N"},
	"huawei-vrp":  {"-U"},
	"mikrotik":    {"-K7"},
	"bird":        {"-b"},
	"openbgpd":    {"-B"},
}

// rangeParsers read (prefix, ge, le) entries of a vendor's prefix list out
// of either program's output (comments skipped).
var rangeParsers = map[string]func(line string) []prefixset.Range{
	"junos": reParser(`^\s*([0-9a-fA-F:.]+/\d+) (exact|upto /\d+|prefix-length-range /\d+-/\d+|orlonger|longer)\s*(?:reject|accept)?;$`, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		switch f := strings.Fields(m[2]); f[0] {
		case "upto":
			r.Le = fltAtoi(strings.TrimPrefix(f[1], "/"))
		case "prefix-length-range":
			g, l, _ := strings.Cut(f[1], "-")
			r.Ge, r.Le = fltAtoi(strings.TrimPrefix(g, "/")), fltAtoi(strings.TrimPrefix(l, "/"))
		case "orlonger":
			r.Le = p.Addr().BitLen()
		case "longer":
			r.Ge, r.Le = p.Bits()+1, p.Addr().BitLen()
		}
		return r
	}),
	"cisco-ios":   ciscoParser(`^ipv?6? prefix-list \S+ permit (\S+)((?: [gl]e \d+)*)$`),
	"cisco-iosxr": ciscoParser(`^\s+([0-9a-fA-F:.]+/\d+)((?: [gl]e \d+)*),?$`),
	"arista-eos":  ciscoParser(`^\s*seq \d+ permit (\S+)((?: [gl]e \d+)*)$`),
	"nokia-sros": reParser(`^\s*prefix ([0-9a-fA-F:.]+/\d+) (exact|longer|prefix-length-range \d+-\d+|through \d+)$`, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		switch f := strings.Fields(m[2]); f[0] {
		case "longer":
			r.Ge, r.Le = p.Bits()+1, p.Addr().BitLen()
		case "prefix-length-range":
			g, l, _ := strings.Cut(f[1], "-")
			r.Ge, r.Le = fltAtoi(g), fltAtoi(l)
		case "through":
			r.Le = fltAtoi(f[1])
		}
		return r
	}),
	"huawei-vrp": reParser(`^ip ipv?6?-?prefix \S+ (?:index \d+ )?permit ([0-9a-fA-F:.]+) (\d+)(?: greater-equal (\d+))?(?: less-equal (\d+))?$`, func(m []string) prefixset.Range {
		p := netip.PrefixFrom(netip.MustParseAddr(m[1]), fltAtoi(m[2]))
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		if m[3] != "" {
			r.Ge, r.Le = fltAtoi(m[3]), p.Addr().BitLen() // VRP: greater-equal alone means up to the maximum
		}
		if m[4] != "" {
			r.Le = fltAtoi(m[4])
		}
		return r
	}),
	// "dst in P && dst-len in G-L", or bgpq4's "dst=P" for an exact entry.
	"mikrotik": reParser(`dst(?: in |==?)([0-9a-fA-F:.]+/\d+)(?: && dst-len in (\d+)-(\d+))?\)`, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		if m[2] == "" {
			return prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		}
		return prefixset.Range{Prefix: p, Ge: fltAtoi(m[2]), Le: fltAtoi(m[3])}
	}),
	"bird": reParser(`^\s*([0-9a-fA-F:.]+/\d+)(\{\d+,\d+\}|\+)?,?$`, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		switch {
		case m[2] == "+":
			r.Le = p.Addr().BitLen()
		case m[2] != "":
			g, l, _ := strings.Cut(strings.Trim(m[2], "{}"), ",")
			r.Ge, r.Le = fltAtoi(g), fltAtoi(l)
		}
		return r
	}),
	// "P prefixlen G - L", "P prefixlen = L" (bgpq4), "P or-longer", "P".
	"openbgpd": reParser(`^\s*([0-9a-fA-F:.]+/\d+)(?: (prefixlen \d+ - \d+|prefixlen = \d+|or-longer))?$`, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		switch f := strings.Fields(m[2]); {
		case len(f) == 4:
			r.Ge, r.Le = fltAtoi(f[1]), fltAtoi(f[3])
		case len(f) == 3:
			r.Ge, r.Le = fltAtoi(f[2]), fltAtoi(f[2])
		case len(f) == 1:
			r.Le = p.Addr().BitLen()
		}
		return r
	}),
}

func fltAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("bad number %q in a parsed list", s)) // only reached through the regexes above
	}
	return n
}

func reParser(expr string, build func([]string) prefixset.Range) func(string) []prefixset.Range {
	re := regexp.MustCompile(expr)
	return func(line string) []prefixset.Range {
		var out []prefixset.Range
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			out = append(out, build(m))
		}
		return out
	}
}

// ciscoParser reads "P [ge G] [le L]": ge alone means up to the maximum,
// le alone means from the prefix's own length.
func ciscoParser(expr string) func(string) []prefixset.Range {
	return reParser(expr, func(m []string) prefixset.Range {
		p := netip.MustParsePrefix(m[1])
		r := prefixset.Range{Prefix: p, Ge: p.Bits(), Le: p.Bits()}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			switch f[i] {
			case "ge":
				r.Ge = fltAtoi(f[i+1])
				r.Le = p.Addr().BitLen()
			case "le":
				r.Le = fltAtoi(f[i+1])
			}
		}
		return r
	})
}

// parseList extracts one family's entries of the prefix lists in a file.
func parseList(vendor, text string, v6 bool) []prefixset.Range {
	var out []prefixset.Range
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || strings.HasPrefix(t, "!") || strings.HasPrefix(t, "*") || strings.HasPrefix(t, "/*") {
			continue
		}
		for _, r := range rangeParsers[vendor](line) {
			if r.Prefix.Addr().Is6() == v6 {
				out = append(out, r)
			}
		}
	}
	return out
}

type corpusRoute struct {
	prefix netip.Prefix
	origin uint32
}

func loadCorpus(t *testing.T) []corpusRoute {
	t.Helper()
	var out []corpusRoute
	for _, f := range corpusFiles {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = rpsl.Parse(f, fh, func(o *rpsl.Object) error {
			if o.Class != "route" && o.Class != "route6" {
				return nil
			}
			p, _ := o.Get(o.Class)
			origin, _ := o.Get("origin")
			a, err := rpsl.ParseASN(origin)
			if err != nil {
				return err
			}
			out = append(out, corpusRoute{netip.MustParsePrefix(strings.TrimSpace(p)), a})
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// corpusIntent is what asfence makes of the same route objects: one target
// with their origins and prefixes, a policy that drops nothing (bgpq4 has
// no such guards), route filters with more-specifics up to the maximum or
// exact.
func corpusIntent(t *testing.T, routes []corpusRoute, orLonger bool) *policy.Intent {
	t.Helper()
	tr := asn.TargetResult{Name: "corpus"}
	seenASN := map[uint32]bool{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range routes {
		if !seenASN[r.origin] {
			seenASN[r.origin] = true
			tr.ASNs = append(tr.ASNs, asn.ASN{ASN: r.origin, Evidence: []asn.Evidence{{Source: "irr:RIPE-NONAUTH", Seen: now}}})
		}
		tr.Prefixes = append(tr.Prefixes, asn.Prefix{Prefix: r.prefix, Origins: []uint32{r.origin},
			Evidence: []asn.Evidence{{Source: "irr:RIPE-NONAUTH", Detail: "route object", Seen: now}}})
	}
	s := &asn.Snapshot{GeneratedAt: now, Targets: []asn.TargetResult{tr}}
	s.Normalize()
	pc := policy.PolicyConfig{AllowBogons: true, MoreSpecifics: &orLonger,
		IPv4: policy.LengthBounds{MinLength: 1}, IPv6: policy.LengthBounds{MinLength: 1}}
	pol, err := pc.Build()
	if err != nil {
		t.Fatal(err)
	}
	in := pol.Apply(s)
	if len(in.Dropped) > 0 {
		t.Fatalf("the comparison policy dropped %v", in.Dropped)
	}
	return in
}

// probeRoutes: every registered prefix, its parent, both children, the
// host routes at its edges, random more-specifics inside it and random
// routes next to it.
func probeRoutes(routes []corpusRoute, v6 bool) []netip.Prefix {
	r := rand.New(rand.NewPCG(11, 13))
	var out []netip.Prefix
	for _, cr := range routes {
		p := cr.prefix
		if p.Addr().Is6() != v6 {
			continue
		}
		maxLen := p.Addr().BitLen()
		out = append(out, p, netip.PrefixFrom(p.Addr(), maxLen), netip.PrefixFrom(prefixtest.LastAddr(p), maxLen))
		if p.Bits() > 0 {
			out = append(out, netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked())
		}
		if p.Bits() < maxLen {
			out = append(out, netip.PrefixFrom(p.Addr(), p.Bits()+1))
			out = append(out, netip.PrefixFrom(prefixtest.LastAddr(p), p.Bits()+1).Masked())
		}
		for range 20 {
			l := p.Bits() + r.IntN(maxLen-p.Bits()+1)
			out = append(out, netip.PrefixFrom(prefixtest.RandomIn(r, p), l).Masked())
			around := netip.PrefixFrom(p.Addr(), max(p.Bits()-4, 0)).Masked()
			out = append(out, netip.PrefixFrom(prefixtest.RandomIn(r, around), l).Masked())
		}
	}
	return out
}

func fltMatches(rs []prefixset.Range, route netip.Prefix) bool {
	for _, r := range rs {
		if r.Matches(route) {
			return true
		}
	}
	return false
}

// runBGPQ4 runs the real bgpq4 against the test IRRd server.
func runBGPQ4(t *testing.T, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bgpq4", append([]string{"-h", addr, "-S", "RIPE-NONAUTH"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bgpq4 %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func TestFiltersMatchBGPQ4(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "bgpq4")
	idx, err := irr.LoadFiles(corpusFiles...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := irrd.Listen("127.0.0.1:0", idx, irrd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	routes := loadCorpus(t)
	var asArgs []string
	for _, r := range routes {
		if a := fmt.Sprintf("AS%d", r.origin); !slices.Contains(asArgs, a) {
			asArgs = append(asArgs, a)
		}
	}
	for _, mode := range []struct {
		name     string
		orLonger bool
	}{{"more-specifics", true}, {"exact", false}} {
		in := corpusIntent(t, routes, mode.orLonger)
		for vendor, flags := range bgpq4Flags {
			for _, v6 := range []bool{false, true} {
				fam, name, maxLen := "4", filters.DefaultNames.PrefixV4, "32"
				if v6 {
					fam, name, maxLen = "6", filters.DefaultNames.PrefixV6, "128"
				}
				t.Run(fmt.Sprintf("%s/%s/ipv%s", mode.name, vendor, fam), func(t *testing.T) {
					args := append([]string{"-" + fam, "-A", "-l", name}, flags...)
					if mode.orLonger {
						args = append(args, "-R", maxLen)
					}
					ref := parseList(vendor, runBGPQ4(t, srv.Addr(), append(args, asArgs...)...), v6)
					out, err := filters.Render(in, filters.RenderOptions{Vendor: vendor})
					if err != nil {
						t.Fatal(err)
					}
					got := parseList(vendor, string(out), v6)
					if len(ref) == 0 || len(got) == 0 {
						t.Fatalf("empty list: bgpq4 %d entries, asfence %d", len(ref), len(got))
					}
					probes := probeRoutes(routes, v6)
					var both, neither int
					for _, p := range probes {
						a, b := fltMatches(got, p), fltMatches(ref, p)
						if a != b {
							t.Fatalf("route %s: asfence matches %v, bgpq4 matches %v\nasfence %v\nbgpq4   %v", p, a, b, got, ref)
						}
						if a {
							both++
						} else {
							neither++
						}
					}
					if both == 0 || neither == 0 {
						t.Fatalf("corpus does not discriminate: %d matched, %d not", both, neither)
					}
					same := slices.Equal(got, ref)
					t.Logf("%d probe routes agree (%d matched, %d not); %d asfence entries, %d bgpq4 entries, identical lists: %v",
						len(probes), both, neither, len(got), len(ref), same)
				})
			}
		}
	}
}
