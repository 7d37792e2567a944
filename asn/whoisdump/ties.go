package whoisdump

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/asfence/asfence/asn"
)

// DefaultMaxOrgASNs is the number of aut-nums naming one organisation above
// which the organisation is taken to be a pool (a national registry, an
// LIR registering its customers' ASNs) and is not followed: the same
// threshold as the RIR statistics' opaque-ids.
const DefaultMaxOrgASNs = 50

// DefaultMaxUntied bounds the objects a maintainer may maintain that are
// tied to the target by nothing else before it is taken to be a service
// maintainer (of an LIR, an upstream, a consultancy) and not followed. It
// also bounds the objects held back while a dump is read.
const DefaultMaxUntied = 1000

// link says why an organisation handle or a maintainer belongs to a
// target, and through which ASN (0 if none).
type link struct {
	why string
	via uint32
}

// maint is a maintainer listed on the target's own objects, with what it
// maintains: objects tied to the target by something else (a target
// organisation, a name, a known ASN), objects tied by nothing else, and
// the first object it maintains of another organisation.
type maint struct {
	link
	handle        string
	tied, untied  int
	foreign       string
	untiedExample string
}

// follows reports whether the maintainer rule lets m tie objects to the
// target: it maintains nothing of another organisation, and the objects
// it alone would tie are no more than those tied otherwise (and at most
// max).
func (m *maint) follows(max int) bool {
	return m.foreign == "" && m.untied <= m.tied && m.untied <= max
}

// verdict describes m's counts and whether it is followed, for evidence.
func (m *maint) verdict(max int) string {
	switch {
	case m.foreign != "":
		return "not followed: it also maintains " + m.foreign
	case m.untied > m.tied || m.untied > max:
		return fmt.Sprintf("not followed: it maintains %d object(s) tied to the target otherwise and %d not, e.g. %s", m.tied, m.untied, m.untiedExample)
	}
	return fmt.Sprintf("it maintains %d object(s) tied to the target otherwise and %d not, none of another organisation", m.tied, m.untied)
}

func (m *maint) count(tied bool, what string) {
	if tied {
		m.tied++
		return
	}
	m.untied++
	if m.untiedExample == "" {
		m.untiedExample = what
	}
}

// ties is what ties objects to one target, given the ASNs known so far.
type ties struct {
	re      *regexp.Regexp
	names   prefilter
	known   map[uint32]bool
	orgs    map[string]link   // the target's organisation handles
	skipped map[string]string // organisations on known aut-nums that are not followed
	mnts    map[string]*maint // maintainers listed on the target's objects
	max     int
}

// ties works out the target's organisations and maintainers from the
// index: organisations whose org-name matches the target's names and the
// organisations of the known ASNs' aut-nums (unless pooled), and the
// maintainers of those aut-nums and organisations (and mntner objects of
// the target's organisations or names), each judged by the maintainer rule
// on the identity objects.
func (x *index) ties(t *asn.Target, known []uint32, maxOrgASNs, maxUntied int) *ties {
	tt := &ties{re: t.NameMatcher(), names: newPrefilter(t.Names), known: map[uint32]bool{}, orgs: map[string]link{}, skipped: map[string]string{},
		mnts: map[string]*maint{}, max: maxUntied}
	for _, a := range known {
		tt.known[a] = true
	}
	for _, a := range known {
		n := x.autnums[a]
		if n == nil || n.Org == "" {
			continue
		}
		o := x.orgs[n.Org]
		switch {
		case o != nil && (o.Type == "NIR" || o.Type == "RIR" || o.Type == "IANA"):
			tt.skipped[n.Org] = fmt.Sprintf("org-type %s", o.Type)
		case len(x.orgASNs[n.Org]) > maxOrgASNs:
			tt.skipped[n.Org] = fmt.Sprintf("named by %d aut-nums: a pool of holders", len(x.orgASNs[n.Org]))
		default:
			if _, ok := tt.orgs[n.Org]; !ok {
				tt.orgs[n.Org] = link{fmt.Sprintf("the org of AS%d's aut-num", a), a}
			}
		}
	}
	if tt.re != nil {
		for _, h := range sortedKeys(x.orgs) {
			o := x.orgs[h]
			if _, ok := tt.orgs[h]; ok || o.Type == "NIR" || o.Type == "RIR" || o.Type == "IANA" || !tt.nameMatch(o.Name) {
				continue
			}
			tt.orgs[h] = link{fmt.Sprintf("an organisation whose org-name %q matches the target's names", o.Name), 0}
		}
	}
	candidate := func(m string, l link) {
		if _, ok := tt.mnts[m]; !ok {
			tt.mnts[m] = &maint{link: l, handle: m}
		}
	}
	for _, a := range known {
		if n := x.autnums[a]; n != nil {
			for _, m := range n.MntBy {
				candidate(m, link{fmt.Sprintf("mnt-by of AS%d's aut-num", a), a})
			}
		}
	}
	for _, h := range sortedKeys(tt.orgs) {
		if o := x.orgs[h]; o != nil {
			for _, m := range o.MntBy {
				candidate(m, link{"mnt-by of organisation " + h, 0})
			}
		}
	}
	for _, h := range sortedKeys(x.mntners) {
		mn := x.mntners[h]
		for _, org := range mn.Orgs {
			if _, ok := tt.orgs[org]; ok {
				candidate(h, link{"mntner with org: " + org, 0})
			}
		}
		if tt.nameMatch(h) {
			candidate(h, link{"a mntner whose name matches the target's names", 0})
		}
	}
	// The maintainer rule on the identity objects.
	for _, h := range sortedKeys(tt.mnts) {
		m := tt.mnts[h]
		if mn := x.mntners[h]; mn != nil {
			for _, org := range mn.Orgs {
				if _, ok := tt.orgs[org]; !ok && m.foreign == "" {
					m.foreign = fmt.Sprintf("its own mntner object names organisation %s", org)
				}
			}
		}
		for _, a := range x.mntASNs[h] {
			n := x.autnums[a]
			_, orgTied := tt.orgs[n.Org]
			named := tt.nameMatch(n.Name, n.Descr)
			switch {
			case n.Org != "" && !orgTied && !tt.known[a] && !named:
				if m.foreign == "" {
					m.foreign = fmt.Sprintf("aut-num AS%d of organisation %s", a, n.Org)
				}
			default:
				m.count(tt.known[a] || orgTied || named, fmt.Sprintf("aut-num AS%d %s", a, n.Name))
			}
		}
		for _, org := range x.mntOrgs[h] {
			if _, ok := tt.orgs[org]; ok {
				m.tied++
			} else if m.foreign == "" {
				m.foreign = "organisation " + org
			}
		}
	}
	return tt
}

// nameMatch reports whether any of s matches the target's names on word
// boundaries. A case-insensitive substring search rules out most values
// before the regular expression is run.
func (tt *ties) nameMatch(s ...string) bool {
	if tt.re == nil {
		return false
	}
	for _, v := range s {
		if v != "" && tt.names.mayMatch(v) && tt.re.MatchString(v) {
			return true
		}
	}
	return false
}

// prefilter holds the target's names for a quick case-insensitive
// substring test (nil when a name is not ASCII: then every value goes to
// the regular expression).
type prefilter []string

func newPrefilter(names []string) prefilter {
	var out prefilter
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			if n[i] >= 0x80 {
				return nil
			}
		}
		out = append(out, strings.ToLower(n))
	}
	return out
}

func (p prefilter) mayMatch(s string) bool {
	if p == nil {
		return true
	}
	for _, n := range p {
		if n == "" {
			continue
		}
		c := n[0]
		for i := 0; i+len(n) <= len(s); i++ {
			if b := s[i] | 0x20; (b == c || s[i] == c) && strings.EqualFold(s[i:i+len(n)], n) {
				return true
			}
		}
	}
	return false
}

// discover returns the ASNs the index ties to the target: aut-nums naming
// a target organisation, aut-nums maintained by a followed maintainer, and
// aut-nums whose as-name or descr match the target's names.
func (x *index) discover(tt *ties, src func(*autNum, string) asn.ASNFact) []asn.ASNFact {
	var out []asn.ASNFact
	for _, h := range sortedKeys(tt.orgs) {
		l := tt.orgs[h]
		for _, a := range x.orgASNs[h] {
			if a == l.via {
				continue
			}
			out = append(out, src(x.autnums[a], fmt.Sprintf("aut-num AS%d org: %s, %s", a, h, l.why)))
		}
	}
	for _, h := range sortedKeys(tt.mnts) {
		m := tt.mnts[h]
		if !m.follows(tt.max) {
			continue
		}
		for _, a := range x.mntASNs[h] {
			if a == m.via {
				continue
			}
			out = append(out, src(x.autnums[a], fmt.Sprintf("aut-num AS%d maintained by %s (%s; %s)", a, h, m.why, m.verdict(tt.max))))
		}
	}
	if tt.re != nil {
		for _, a := range sortedKeys(x.autnums) {
			n := x.autnums[a]
			switch {
			case tt.nameMatch(n.Name):
				out = append(out, src(n, fmt.Sprintf("aut-num AS%d as-name %s matches the target's names", a, n.Name)))
			case tt.nameMatch(n.Descr):
				out = append(out, src(n, fmt.Sprintf("aut-num AS%d descr %q matches the target's names", a, oneLine(n.Descr))))
			}
		}
	}
	return out
}

// describe says how a known ASN is registered: its aut-num's name,
// organisation and maintainers, and whether each is followed.
func (x *index) describe(tt *ties, a uint32) (string, bool) {
	n := x.autnums[a]
	if n == nil {
		return "", false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "aut-num AS%d as-name %s", a, n.Name)
	if n.Org != "" {
		name := ""
		if o := x.orgs[n.Org]; o != nil {
			name = fmt.Sprintf(" %q", o.Name)
		}
		if why, ok := tt.skipped[n.Org]; ok {
			fmt.Fprintf(&b, ", org %s%s (not followed: %s)", n.Org, name, why)
		} else {
			fmt.Fprintf(&b, ", org %s%s", n.Org, name)
		}
	}
	for _, h := range n.MntBy {
		if m := tt.mnts[h]; m != nil {
			fmt.Fprintf(&b, ", mnt-by %s (%s)", h, m.verdict(tt.max))
		}
	}
	return b.String(), true
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " / ") }

func sortedKeys[K string | uint32, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
