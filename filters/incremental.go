package filters

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// Update is how a router holding the file rendered from one Intent gets
// the file rendered from another: either Commands that touch only what
// changed, or, when FullReplace is set, only by loading the whole new
// file, for the reason FullReplace gives.
type Update struct {
	Commands    string
	FullReplace string
}

// IncrementalCommands returns the Update from the configuration rendered
// from old to the one rendered from new. The commands come from the
// vendor's incremental template (templates_dir may replace it); a vendor
// without one, or a change its template cannot express, needs a full
// replace.
func IncrementalCommands(vendorID string, old, new *policy.Intent, o RenderOptions) (Update, error) {
	v, err := lookup(vendorID)
	if err != nil {
		return Update{}, fmt.Errorf("incremental: %w", err)
	}
	if old == nil || new == nil {
		return Update{}, fmt.Errorf("incremental %s: both intents are needed", vendorID)
	}
	n := o.Names.WithDefaults()
	if err := n.validate(); err != nil {
		return Update{}, fmt.Errorf("incremental %s: %w", vendorID, err)
	}
	if v.incremental == "" {
		return Update{FullReplace: v.fullReplace}, nil
	}
	a, b := Prepare(old), Prepare(new)
	if err := v.checkCapacity(v.lists(b, n), o.MaxEntries); err != nil {
		return Update{}, err
	}
	tmpl, fr, err := loadTemplate(v.incremental, o.TemplatesDir, !o.interpreted)
	if err != nil {
		return Update{}, fmt.Errorf("incremental %s: %w", vendorID, err)
	}
	data := incrementalData(vendorID, n, a, b)
	var buf bytes.Buffer
	if err := executeTemplate(tmpl, fr, &buf, data); err != nil {
		var full *fullReplaceError
		if errors.As(err, &full) {
			return Update{FullReplace: full.why}, nil
		}
		return Update{}, fmt.Errorf("incremental %s: template %s: %w", vendorID, tmpl.Name(), err)
	}
	return Update{Commands: buf.String()}, nil
}

// fullReplaceError is raised by the template function fullReplace: the
// change needs the full file.
type fullReplaceError struct{ why string }

func (e *fullReplaceError) Error() string { return "full replace: " + e.why }

// IncrementalData is what an incremental template receives: each list of
// the old and the new file and what changed in it. Entries are in file
// order; N and Last count within their own slice.
type IncrementalData struct {
	Vendor string
	Names  Names
	// Summary is the one-line count of the change ("asfence incremental
	// update: IPv4 entries +2 -1, ...", without a comment marker).
	Summary string
	// Changed reports whether any list changed.
	Changed bool
	// V4 and V6 are the route-filter lists, ASNs the origin list, Cov4
	// and Cov6 the address coverage of the data-plane filters.
	V4, V6     ListDelta[Entry]
	ASNs       ListDelta[uint32]
	Cov4, Cov6 ListDelta[AddrEntry]
}

// ListDelta is one list in the old and the new file.
type ListDelta[T any] struct {
	// Name is the list's configured name.
	Name string
	// Old and New are the list's entries in each file.
	Old, New []T
	// Added (in New's order) and Removed (in Old's order) are the entries
	// in only one of them.
	Added, Removed []T
}

// Changed reports whether entries were added or removed.
func (d ListDelta[T]) Changed() bool { return len(d.Added)+len(d.Removed) > 0 }

// WasEmpty reports a list that was empty and now has entries.
func (d ListDelta[T]) WasEmpty() bool { return len(d.Old) == 0 && len(d.New) > 0 }

// BecameEmpty reports a list that had entries and now has none.
func (d ListDelta[T]) BecameEmpty() bool { return len(d.Old) > 0 && len(d.New) == 0 }

// Emptiness is "was empty" or "became empty" when the list's emptiness
// changed (which, on some platforms, adds or removes a policy term), else
// "".
func (d ListDelta[T]) Emptiness() string {
	switch {
	case d.WasEmpty():
		return "was empty"
	case d.BecameEmpty():
		return "became empty"
	}
	return ""
}

func incrementalData(vendorID string, n Names, a, b *Prepared) *IncrementalData {
	d := &IncrementalData{
		Vendor: vendorID, Names: n,
		V4:   rangeDelta(n.PrefixV4, a.v4, b.v4, a.e4, b.e4),
		V6:   rangeDelta(n.PrefixV6, a.v6, b.v6, a.e6, b.e6),
		Cov4: coverDelta(n.ACLV4, a.cov4, b.cov4, a.a4, b.a4),
		Cov6: coverDelta(n.ACLV6, a.cov6, b.cov6, a.a6, b.a6),
	}
	removed, added := setDiff(a.asns, b.asns)
	d.ASNs = ListDelta[uint32]{Name: n.ASPath, Old: a.asns, New: b.asns, Added: added, Removed: removed}
	d.Changed = d.V4.Changed() || d.V6.Changed() || d.ASNs.Changed() || d.Cov4.Changed() || d.Cov6.Changed()
	c := func(l interface{ counts() (int, int) }) string {
		added, removed := l.counts()
		return fmt.Sprintf("+%d -%d", added, removed)
	}
	d.Summary = fmt.Sprintf("asfence incremental update: IPv4 entries %s, IPv6 entries %s, origin ASNs %s", c(d.V4), c(d.V6), c(d.ASNs))
	return d
}

func (d ListDelta[T]) counts() (added, removed int) { return len(d.Added), len(d.Removed) }

func rangeDelta(name string, a, b []prefixset.Range, ea, eb []Entry) ListDelta[Entry] {
	removed, added := setDiff(a, b)
	return ListDelta[Entry]{Name: name, Old: ea, New: eb, Added: entries(added), Removed: entries(removed)}
}

func coverDelta(name string, a, b []netip.Prefix, ea, eb []AddrEntry) ListDelta[AddrEntry] {
	removed, added := setDiff(a, b)
	return ListDelta[AddrEntry]{Name: name, Old: ea, New: eb, Added: addrEntries(added), Removed: addrEntries(removed)}
}

// setDiff returns the elements only in a and only in b, in a's and b's
// order.
func setDiff[T comparable](a, b []T) (removed, added []T) {
	inA := make(map[T]bool, len(a))
	for _, x := range a {
		inA[x] = true
	}
	inB := make(map[T]bool, len(b))
	for _, x := range b {
		inB[x] = true
		if !inA[x] {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !inB[x] {
			removed = append(removed, x)
		}
	}
	return removed, added
}
