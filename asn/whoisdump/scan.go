package whoisdump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/rpsl"
)

// held is an address object that only maintainers tie to the target: it is
// kept until the whole dump has been read, since a maintainer may turn out
// to maintain another organisation's objects further on.
type held struct {
	prefixes []netip.Prefix
	what     string // "inetnum ... (netname ...)"
	mnts     []*maint
	seen     time.Time
}

// scan streams the address objects of every dump and returns the prefixes
// of those tied to the target:
//   - by org: the object's org: is one of the target's organisations;
//   - by name: its netname or descr matches the target's names;
//   - by maintainer: its mnt-by, mnt-lower or mnt-routes is a maintainer of
//     the target's that the maintainer rule follows (see maint.follows),
//     judged after every dump has been read.
//
// An object with an org: of another organisation is never tied by a
// maintainer, and (unless it names the target) it disqualifies the
// maintainers it lists. Each range becomes its minimal CIDR cover, with no origin.
// A damaged dump stops there: what was read before it is kept, the other
// dumps are still read, and the error names the file and line.
func (s *Source) scan(ctx context.Context, x *index, tt *ties, files []*file) ([]asn.PrefixFact, error) {
	var out []asn.PrefixFact
	var holds []*held
	var errs []error
	emit := func(ps []netip.Prefix, detail string, seen time.Time) {
		for _, p := range ps {
			out = append(out, asn.PrefixFact{Prefix: p, Evidence: asn.Evidence{Source: s.Name(), Detail: detail, Seen: seen}})
		}
	}
	// prune drops held objects none of whose maintainers can still be
	// followed (bounding what is held).
	prune := func() {
		holds = slices.DeleteFunc(holds, func(h *held) bool {
			return !slices.ContainsFunc(h.mnts, func(m *maint) bool { return m.foreign == "" && m.untied <= tt.max })
		})
	}
	for _, f := range files {
		if f.kind&resourceFile == 0 {
			continue
		}
		date := s.date(f)
		err := s.scanFile(ctx, f, func(obj *rpsl.Object, ps []netip.Prefix) {
			netname := firstValue(obj, "netname")
			what := func() string { return fmt.Sprintf("%s %s, netname %s", obj.Class, obj.Key, netname) }
			org := strings.ToUpper(firstValue(obj, "org"))
			l, orgTied := tt.orgs[org]
			var nameWhy string
			switch {
			case tt.nameMatch(netname):
				nameWhy = fmt.Sprintf("netname %s matches the target's names", netname)
			default:
				for _, d := range obj.Values("descr") {
					if tt.nameMatch(d) {
						nameWhy = fmt.Sprintf("descr %q matches the target's names", oneLine(d))
						break
					}
				}
			}
			var mnts []*maint
			rejected := false
			if len(tt.mnts) > 0 {
				eachHandle(obj, func(h string) {
					m := tt.mnts[h]
					if m == nil || slices.Contains(mnts, m) {
						return
					}
					switch {
					case org != "" && !orgTied && nameWhy == "":
						if m.foreign == "" {
							m.foreign = fmt.Sprintf("%s of organisation %s", what(), org)
							rejected = true
						}
					default:
						tied := orgTied || nameWhy != ""
						if !tied && m.untiedExample == "" {
							m.untiedExample = what()
						}
						m.count(tied, "")
						if m.untied > tt.max {
							rejected = true
						}
					}
					mnts = append(mnts, m)
				}, "mnt-by", "mnt-lower", "mnt-routes")
			}
			if rejected {
				prune()
			}
			switch {
			case orgTied:
				emit(ps, fmt.Sprintf("registered to %s%s: %s; tied by org: %s is %s", org, x.orgName(org), what(), org, l.why), lastModified(obj, date))
			case nameWhy != "":
				descr, _ := obj.Get("descr")
				emit(ps, fmt.Sprintf("registered to %q: %s; tied by name: %s", firstLine(descr, netname), what(), nameWhy), lastModified(obj, date))
			case org == "" && slices.ContainsFunc(mnts, func(m *maint) bool { return m.foreign == "" && m.untied <= tt.max }):
				holds = append(holds, &held{prefixes: ps, what: what(), mnts: mnts, seen: lastModified(obj, date)})
			}
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range holds {
		i := slices.IndexFunc(h.mnts, func(m *maint) bool { return m.follows(tt.max) })
		if i < 0 {
			continue
		}
		m := h.mnts[i]
		emit(h.prefixes, fmt.Sprintf("registered without org: %s; tied by maintainer: %s is %s (%s)", h.what, m.handle, m.why, m.verdict(tt.max)), h.seen)
	}
	return out, errors.Join(errs...)
}

// scanFile calls fn for every inetnum and inet6num object of f with its
// CIDR cover; a bad range stops the file with an error naming its line.
func (s *Source) scanFile(ctx context.Context, f *file, fn func(*rpsl.Object, []netip.Prefix)) error {
	o, err := openObjects(ctx, f.local, f.input, resourceClasses, keptAttrs)
	if err != nil {
		return err
	}
	defer o.close()
	for {
		obj, err := o.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ps, err := parseRange(obj.Class, obj.Key)
		if err != nil {
			return &rpsl.ParseError{File: obj.File, Line: obj.Line, Msg: err.Error()}
		}
		fn(obj, ps)
	}
	sha, err := o.checksum()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if f.sha == "" {
		f.sha, f.comp = sha, o.kind
	}
	s.mu.Unlock()
	return nil
}

// orgName is ` "Name"` for an organisation in the index, or "".
func (x *index) orgName(h string) string {
	if o := x.orgs[h]; o != nil && o.Name != "" {
		return fmt.Sprintf(" %q", o.Name)
	}
	return ""
}

// firstLine is the first line of s, or alt when s is empty.
func firstLine(s, alt string) string {
	if s == "" {
		return alt
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}
