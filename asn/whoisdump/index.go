package whoisdump

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/asfence/asfence/asn/internal/fetch"
	"github.com/asfence/asfence/asn/rpsl"
)

// The classes that say who holds what (read into the index) and the
// classes of address space (streamed for each query).
var (
	identityClasses = []string{"aut-num", "organisation", "mntner"}
	resourceClasses = []string{"inetnum", "inet6num"}
	// attributes kept of any object: everything else (policy, contacts,
	// remarks) is skipped while reading.
	keptAttrs = []string{"as-name", "descr", "netname", "org", "org-name", "org-type",
		"mnt-by", "mnt-lower", "mnt-routes", "last-modified", "changed"}
)

// autNum is what the index keeps of an aut-num object.
type autNum struct {
	ASN   uint32
	Name  string // as-name
	Descr string // descr: lines, joined with "\n"
	Org   string
	// Mnt are the maintainers listed in mnt-by (MntBy) and in mnt-lower
	// or mnt-routes.
	MntBy, Mnt []string
	Seen       time.Time
}

// organisation is what the index keeps of an organisation object.
type organisation struct {
	Handle, Name, Type string
	MntBy              []string
	Seen               time.Time
}

// mntner is what the index keeps of a mntner object: the organisations it
// names (its handle is the index key).
type mntner struct {
	Orgs []string
}

// index holds the identity objects of a registry's dumps: every aut-num,
// organisation and mntner, reduced to the attributes that tie resources to
// holders. It is bounded by the number of ASNs and organisations of the
// registry (not by its address space, which is streamed per query) and is
// read-only once built.
type index struct {
	autnums map[uint32]*autNum
	orgs    map[string]*organisation
	mntners map[string]*mntner
	orgASNs map[string][]uint32 // org handle -> ASNs whose aut-num names it
	mntASNs map[string][]uint32 // maintainer -> aut-nums it maintains
	mntOrgs map[string][]string // maintainer -> organisation objects it maintains
	counts  map[string]int
}

func newIndex() *index {
	return &index{autnums: map[uint32]*autNum{}, orgs: map[string]*organisation{}, mntners: map[string]*mntner{},
		orgASNs: map[string][]uint32{}, mntASNs: map[string][]uint32{}, mntOrgs: map[string][]string{}, counts: map[string]int{}}
}

// read adds the identity objects of one file. On an error it stops; what
// was read before stays in the index.
func (x *index) read(ctx context.Context, path, name string, date time.Time) (sha string, kind fetch.Compression, err error) {
	o, err := openObjects(ctx, path, name, identityClasses, keptAttrs)
	if err != nil {
		return "", "", err
	}
	defer o.close()
	for {
		obj, err := o.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", o.kind, err
		}
		if err := x.add(obj, date); err != nil {
			return "", o.kind, err
		}
	}
	sha, err = o.checksum()
	return sha, o.kind, err
}

func (x *index) add(obj *rpsl.Object, date time.Time) error {
	x.counts[obj.Class]++
	seen := lastModified(obj, date)
	switch obj.Class {
	case "aut-num":
		a, err := rpsl.ParseASN(obj.Key)
		if err != nil {
			return &rpsl.ParseError{File: obj.File, Line: obj.Line, Msg: fmt.Sprintf("aut-num %q: %v", obj.Key, err)}
		}
		n := &autNum{ASN: a, Name: firstValue(obj, "as-name"), Descr: strings.Join(obj.Values("descr"), "\n"),
			Org: strings.ToUpper(firstValue(obj, "org")), MntBy: handles(obj, "mnt-by"), Mnt: handles(obj, "mnt-by", "mnt-lower", "mnt-routes"), Seen: seen}
		if _, dup := x.autnums[a]; !dup {
			x.autnums[a] = n
		}
		if n.Org != "" && !slices.Contains(x.orgASNs[n.Org], a) {
			x.orgASNs[n.Org] = append(x.orgASNs[n.Org], a)
		}
		for _, m := range n.Mnt {
			if !slices.Contains(x.mntASNs[m], a) {
				x.mntASNs[m] = append(x.mntASNs[m], a)
			}
		}
	case "organisation":
		h := strings.ToUpper(strings.TrimSpace(obj.Key))
		if h == "" {
			return &rpsl.ParseError{File: obj.File, Line: obj.Line, Msg: "organisation without a handle"}
		}
		o := &organisation{Handle: h, Name: firstValue(obj, "org-name"), Type: strings.ToUpper(firstValue(obj, "org-type")),
			MntBy: handles(obj, "mnt-by"), Seen: seen}
		if _, dup := x.orgs[h]; !dup {
			x.orgs[h] = o
			for _, m := range o.MntBy {
				x.mntOrgs[m] = append(x.mntOrgs[m], h)
			}
		}
	case "mntner":
		h := strings.ToUpper(strings.TrimSpace(obj.Key))
		if _, dup := x.mntners[h]; !dup && h != "" {
			x.mntners[h] = &mntner{Orgs: handles(obj, "org")}
		}
	}
	return nil
}
