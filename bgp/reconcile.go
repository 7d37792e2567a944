package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// rib reads the speaker's own paths of every family, in wire form
// (decoding them through the API's protobuf form costs seconds per
// 100k), as a set: one class per distinct fingerprint, with attributes
// to withdraw its paths. Paths no key describes (the speaker never builds
// such paths) are returned apart, to be withdrawn. Paths from peers never
// get in (import policy), but are skipped here as well.
func (s *Speaker) rib(ctx context.Context) (set *desiredSet, other []*api.Path, err error) {
	set = &desiredSet{}
	byFP := map[string]uint32{}
	var ferr error
	for _, rf := range families {
		err := s.server.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: apiFamilies[rf], EnableOnlyBinary: true}, func(d *api.Destination) {
			for _, p := range d.Paths {
				if ferr != nil || p.NeighborIp != "<nil>" && p.NeighborIp != "" {
					continue
				}
				k, ok := ribKey(rf, p)
				if !ok {
					p.Family = apiFamilies[rf]
					other = append(other, p)
					continue
				}
				fp, err := fingerprintWire(p.PattrsBinary)
				if err != nil {
					ferr = fmt.Errorf("rib %s %s: %w", rf, d.Prefix, err)
					return
				}
				byKey := rf.String() + fp
				ci, ok := byFP[byKey]
				if !ok {
					byFP[byKey] = uint32(len(set.classes))
					// Any attributes do to withdraw: GoBGP matches the NLRI.
					cl := &pathClass{family: rf}
					if err := s.builder.fill(cl); err != nil {
						ferr = err
						return
					}
					cl.fp = fp
					ci = uint32(len(set.classes))
					set.classes = append(set.classes, cl)
				}
				set.paths = append(set.paths, desiredEntry{key: k, class: ci})
			}
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list %s: %w", rf, err)
		}
		if ferr != nil {
			return nil, nil, ferr
		}
	}
	slices.SortFunc(set.paths, func(a, b desiredEntry) int { return compareKeys(a.key, b.key) })
	return set, other, nil
}

// ribKey is the key of a path listed from the RIB, if it is one the
// speaker builds (a prefix; a FlowSpec rule on one destination or source
// prefix).
func ribKey(rf bgp.RouteFamily, p *api.Path) (pathKey, bool) {
	nlri, err := apiutil.GetNativeNlri(&api.Path{Family: apiFamilies[rf], NlriBinary: p.NlriBinary})
	if err != nil {
		return pathKey{}, false
	}
	var pfx string
	src := false
	switch n := nlri.(type) {
	case *bgp.IPAddrPrefix:
		pfx = n.String()
	case *bgp.IPv6AddrPrefix:
		pfx = n.String()
	case *bgp.FlowSpecIPv4Unicast:
		if len(n.Value) != 1 {
			return pathKey{}, false
		}
		switch c := n.Value[0].(type) {
		case *bgp.FlowSpecDestinationPrefix:
			pfx = c.Prefix.String()
		case *bgp.FlowSpecSourcePrefix:
			pfx, src = c.Prefix.String(), true
		default:
			return pathKey{}, false
		}
	case *bgp.FlowSpecIPv6Unicast:
		if len(n.Value) != 1 {
			return pathKey{}, false
		}
		switch c := n.Value[0].(type) {
		case *bgp.FlowSpecDestinationPrefix6:
			if c.Offset != 0 {
				return pathKey{}, false
			}
			pfx = c.Prefix.String()
		case *bgp.FlowSpecSourcePrefix6:
			if c.Offset != 0 {
				return pathKey{}, false
			}
			pfx, src = c.Prefix.String(), true
		default:
			return pathKey{}, false
		}
	default:
		return pathKey{}, false
	}
	q, err := netip.ParsePrefix(pfx)
	if err != nil || q != q.Masked() {
		return pathKey{}, false
	}
	if (rf == rfV4 || rf == rfFlow4) != q.Addr().Is4() {
		return pathKey{}, false
	}
	return newPathKey(rf, q, src), true
}

// reconcile makes the RIB equal to want. Additions and replacements go
// first, withdrawals last, so that an address covered before and after is
// never uncovered in between. A replacement is an AddPath of the same NLRI
// (an implicit withdraw on the wire); nothing is ever withdrawn to be
// re-added, and no session is touched.
//
// What is installed is read from the RIB (ListPath) unless the speaker
// holds a verified copy: the set its last successful reconcile left
// there (only the speaker writes its RIB: peers' paths are rejected on
// import). Any error drops the copy, so the next run reads the RIB again.
//
// The cost is one sequential pass over both sets, and the changed paths
// sent to GoBGP in batches (one stream): a 1 % change of a million paths
// builds and sends 20k paths, not a million.
func (s *Speaker) reconcile(ctx context.Context, want *desiredSet) (c Counts, err error) {
	// Counted per family (familyRank); the totals and c.ByFamily are
	// made of them at the end.
	var fam [4]FamilyCounts
	defer func() {
		c = Counts{ByFamily: map[string]FamilyCounts{}}
		for _, rf := range families {
			f := fam[familyRank(rf)]
			c.ByFamily[rf.String()] = f
			c.Added += f.Added
			c.Replaced += f.Replaced
			c.Unchanged += f.Unchanged
			c.Withdrawn += f.Withdrawn
		}
		if err != nil {
			s.installed = nil
		} else {
			s.installed = want
		}
	}()
	old, other := s.installed, []*api.Path(nil)
	if old == nil {
		if old, other, err = s.rib(ctx); err != nil {
			return c, fmt.Errorf("bgp: read rib: %w", err)
		}
	}
	// Every change goes through one stream, in order: announcements,
	// then withdrawals. The counts are of what was sent; if the stream
	// fails, the copy is dropped and the next run reads the RIB.
	err = s.api.withStream(ctx, "apply changes", func(st *pathStream) error {
		return s.sendChanges(st, want, old, other, &fam)
	})
	return c, err
}

// sendChanges sends through st what makes the RIB holding old (and other,
// paths the speaker never builds) hold want: announcements and
// replacements as a merge pass over the two sorted sets finds them, then
// withdrawals. fam counts what was sent, per family (familyRank).
func (s *Speaker) sendChanges(st *pathStream, want, old *desiredSet, other []*api.Path, fam *[4]FamilyCounts) error {
	announce := func(e desiredEntry, replace bool) error {
		p, err := want.classes[e.class].apiPath(e.key, s.builder.nextHop6, false)
		if err != nil {
			return fmt.Errorf("bgp: path %s: %w", e.key, err)
		}
		if err := st.send(p); err != nil {
			return fmt.Errorf("bgp: announce: %w", err)
		}
		if f := &fam[familyRank(e.key.family)]; replace {
			f.Replaced++
		} else {
			f.Added++
		}
		return nil
	}
	// Both sets are sorted: one merge pass finds what to announce (sent
	// as found) and what to withdraw (sent after).
	var gone []desiredEntry
	w, h := want.paths, old.paths
	for len(w) > 0 || len(h) > 0 {
		d := 0
		switch {
		case len(h) == 0:
			d = -1
		case len(w) == 0:
			d = 1
		default:
			d = compareKeys(w[0].key, h[0].key)
		}
		switch {
		case d < 0:
			if err := announce(w[0], false); err != nil {
				return err
			}
			w = w[1:]
		case d > 0:
			gone = append(gone, h[0])
			h = h[1:]
		default:
			if want.classes[w[0].class].fp == old.classes[h[0].class].fp {
				fam[familyRank(w[0].key.family)].Unchanged++
			} else if err := announce(w[0], true); err != nil {
				return err
			}
			w, h = w[1:], h[1:]
		}
	}
	// Withdrawals need only the NLRI; the installed class's attributes go
	// along.
	for _, e := range gone {
		p, err := old.classes[e.class].apiPath(e.key, s.builder.nextHop6, true)
		if err != nil {
			return fmt.Errorf("bgp: path %s: %w", e.key, err)
		}
		if err := st.send(p); err != nil {
			return fmt.Errorf("bgp: withdraw: %w", err)
		}
		fam[familyRank(e.key.family)].Withdrawn++
	}
	for _, p := range other {
		p.IsWithdraw = true
		if err := st.send(p); err != nil {
			return fmt.Errorf("bgp: withdraw: %w", err)
		}
		fam[familyRank(bgp.AfiSafiToRouteFamily(uint16(p.Family.Afi), uint8(p.Family.Safi)))].Withdrawn++
	}
	return nil
}
