package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/explain"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

const (
	prefixesPerPage = 100
	// maxASNRows bounds the ASN table of one target.
	maxASNRows = 1000
)

// Sort keys of the prefix table.
var prefixSorts = []string{"prefix", "length", "origin", "source", "seen"}

type targetSummary struct {
	Name, Description string
	ID                uint32
	IPv4, IPv6, ASNs  int
	Href              string
	Current           bool
}

// asnRow is one origin ASN of a target with what the registries said.
type asnRow struct {
	ASN      uint32
	Name     string
	NameOnly bool
	Evidence []asn.Evidence
}

type sortLink struct {
	Key, Href string
	// Current: the table is sorted by this key; Desc: descending.
	Current, Desc bool
}

type targetsPage struct {
	Applied  *Applied
	Targets  []targetSummary
	Target   *targetSummary
	Family   string
	Sort     string
	Desc     bool
	Sorts    []sortLink
	Families []sortLink
	ASNs     []asnRow
	ASNsMore int
	Prefixes []asn.Prefix
	Pager    pager
	Query    string
	Explain  *explain.Result
	// QueryError says why the search box's text was not understood.
	QueryError string
}

// targetsQuery is the Targets page's state as URL parameters.
type targetsQuery struct {
	target, family, sort string
	desc                 bool
}

func (q targetsQuery) link(offset int) string {
	v := url.Values{}
	if q.target != "" {
		v.Set("target", q.target)
	}
	if q.family != "" {
		v.Set("family", q.family)
	}
	if q.sort != "" && q.sort != "prefix" {
		v.Set("sort", q.sort)
	}
	if q.desc {
		v.Set("order", "desc")
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	if len(v) == 0 {
		return "/targets"
	}
	return "/targets?" + v.Encode()
}

func (c *Console) targets(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	tq := targetsQuery{target: qv.Get("target"), family: qv.Get("family"), sort: qv.Get("sort"), desc: qv.Get("order") == "desc"}
	if tq.sort == "" {
		tq.sort = "prefix"
	}
	if !contains(prefixSorts, tq.sort) {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("sort %q: want one of %s", tq.sort, strings.Join(prefixSorts, ", ")))
		return
	}
	var fam prefixset.Family
	switch tq.family {
	case "":
	case "ipv4":
		fam = prefixset.IPv4
	case "ipv6":
		fam = prefixset.IPv6
	default:
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("family %q: want ipv4 or ipv6", tq.family))
		return
	}
	if o := qv.Get("order"); o != "" && o != "asc" && o != "desc" {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("order %q: want asc or desc", o))
		return
	}
	offset, err := intParam(r, "offset", 0, 1<<30)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ap, err := c.b.Applied(r.Context())
	if err != nil {
		c.backendError(w, r, err)
		return
	}
	p := targetsPage{Applied: ap, Family: tq.family, Sort: tq.sort, Desc: tq.desc, Query: strings.TrimSpace(qv.Get("q"))}
	if p.Query != "" && ap != nil {
		ex := explain.New(ap.Snapshot, ap.Intent)
		if ap.Policy != nil {
			ex = ex.WithPolicy(*ap.Policy)
		}
		if ex, err := ex.Query(p.Query); err != nil {
			p.QueryError = err.Error()
		} else {
			p.Explain = ex
		}
	}
	if ap == nil {
		c.render(w, r, http.StatusOK, "targets", "Targets", p)
		return
	}
	in := ap.Intent
	if tq.target == "" && p.Explain != nil && len(p.Explain.Matches) > 0 {
		tq.target = p.Explain.Matches[0].Target // the target that blocks what was searched
	}
	if tq.target == "" && len(in.Targets) > 0 {
		tq.target = in.Targets[0].Name
	}
	var ti *policy.TargetIntent
	for i := range in.Targets {
		t := &in.Targets[i]
		s := targetSummary{Name: t.Name, Description: t.Description, ID: t.ID, IPv4: len(t.Exact(prefixset.IPv4)),
			IPv6: len(t.Exact(prefixset.IPv6)), ASNs: len(t.ASNs), Current: t.Name == tq.target}
		s.Href = targetsQuery{target: t.Name, family: tq.family, sort: tq.sort, desc: tq.desc}.link(0)
		p.Targets = append(p.Targets, s)
		if s.Current {
			ti = t
			p.Target = &p.Targets[len(p.Targets)-1]
		}
	}
	if ti == nil {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("no applied target %q", tq.target))
		return
	}
	for _, k := range prefixSorts {
		l := tq
		l.desc = k == tq.sort && !tq.desc
		l.sort = k
		p.Sorts = append(p.Sorts, sortLink{Key: k, Href: l.link(0), Current: k == tq.sort, Desc: tq.desc})
	}
	for _, f := range []string{"", "ipv4", "ipv6"} {
		l := tq
		l.family = f
		p.Families = append(p.Families, sortLink{Key: f, Href: l.link(0), Current: f == tq.family})
	}
	p.ASNs = asnRows(ti, ap.Snapshot)
	if len(p.ASNs) > maxASNRows {
		p.ASNsMore = len(p.ASNs) - maxASNRows
		p.ASNs = p.ASNs[:maxASNRows]
	}
	idx := make([]int, 0, len(ti.Prefixes))
	for i, pf := range ti.Prefixes {
		if fam == 0 || prefixset.Of(pf.Prefix) == fam {
			idx = append(idx, i)
		}
	}
	sortPrefixes(ti.Prefixes, idx, tq.sort, tq.desc)
	end := min(offset+prefixesPerPage, len(idx))
	for _, i := range idx[min(offset, end):end] {
		p.Prefixes = append(p.Prefixes, ti.Prefixes[i])
	}
	p.Pager = newPager(offset, prefixesPerPage, len(idx), tq.link)
	c.render(w, r, http.StatusOK, "targets", "Targets", p)
}

// asnRows lists a target's origin ASNs with the Snapshot's names and
// evidence.
func asnRows(t *policy.TargetIntent, snap *asn.Snapshot) []asnRow {
	facts := map[uint32]asn.ASN{}
	if snap != nil {
		for _, st := range snap.Targets {
			if st.Name == t.Name {
				for _, a := range st.ASNs {
					facts[a.ASN] = a
				}
			}
		}
	}
	out := make([]asnRow, 0, len(t.ASNs))
	for _, n := range t.ASNs {
		f := facts[n]
		out = append(out, asnRow{ASN: n, Name: f.Name, NameOnly: f.NameOnly, Evidence: f.Evidence})
	}
	return out
}

// sortPrefixes orders idx (indexes into ps) by key.
func sortPrefixes(ps []asn.Prefix, idx []int, key string, desc bool) {
	byPrefix := func(a, b asn.Prefix) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	}
	var f func(a, b asn.Prefix) int
	switch key {
	case "length":
		f = func(a, b asn.Prefix) int { return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()) }
	case "origin":
		f = func(a, b asn.Prefix) int { return cmp.Compare(firstOrigin(a), firstOrigin(b)) }
	case "source":
		f = func(a, b asn.Prefix) int { return strings.Compare(firstSource(a), firstSource(b)) }
	case "seen":
		f = func(a, b asn.Prefix) int { return lastSeen(a).Compare(lastSeen(b)) }
	default:
		f = func(asn.Prefix, asn.Prefix) int { return 0 }
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		c := f(ps[i], ps[j])
		if c == 0 {
			c = byPrefix(ps[i], ps[j])
		}
		if desc {
			return -c
		}
		return c
	})
}

func firstOrigin(p asn.Prefix) uint32 {
	if len(p.Origins) == 0 {
		return 0
	}
	return slices.Min(p.Origins)
}

func firstSource(p asn.Prefix) string {
	if len(p.Evidence) == 0 {
		return ""
	}
	s := p.Evidence[0].Source
	for _, e := range p.Evidence[1:] {
		s = min(s, e.Source)
	}
	return s
}

func lastSeen(p asn.Prefix) time.Time {
	var t time.Time
	for _, e := range p.Evidence {
		if e.Seen.After(t) {
			t = e.Seen
		}
	}
	return t
}
