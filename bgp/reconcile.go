package bgp

import (
	"context"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// installed is a path read back from the RIB.
type installed struct {
	path *api.Path
	fp   string
}

// rib reads the speaker's own paths of every family, keyed like desired
// paths. Paths from peers never get in (import policy), but are skipped
// here as well.
func (s *Speaker) rib(ctx context.Context) (map[string]installed, error) {
	out := map[string]installed{}
	var ferr error
	for _, rf := range families {
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		fam := &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)}
		err := s.server.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam}, func(d *api.Destination) {
			for _, p := range d.Paths {
				if ferr != nil || p.NeighborIp != "<nil>" && p.NeighborIp != "" {
					continue
				}
				nlri, err := apiutil.GetNativeNlri(p)
				if err != nil {
					ferr = fmt.Errorf("rib %s %s: %w", rf, d.Prefix, err)
					return
				}
				attrs, err := apiutil.GetNativePathAttributes(p)
				if err != nil {
					ferr = fmt.Errorf("rib %s %s: %w", rf, d.Prefix, err)
					return
				}
				fp, err := fingerprint(attrs, nil)
				if err != nil {
					ferr = fmt.Errorf("rib %s %s: %w", rf, d.Prefix, err)
					return
				}
				out[pathKey(rf, nlri)] = installed{path: p, fp: fp}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", rf, err)
		}
		if ferr != nil {
			return nil, ferr
		}
	}
	return out, nil
}

// reconcile makes the RIB equal to want. Additions and replacements go
// first, withdrawals last, so that an address covered before and after is
// never uncovered in between. A replacement is an AddPath of the same NLRI
// (an implicit withdraw on the wire); nothing is ever withdrawn to be
// re-added, and no session is touched.
func (s *Speaker) reconcile(ctx context.Context, want *desiredSet) (Counts, error) {
	c := Counts{ByFamily: map[string]FamilyCounts{}}
	for _, rf := range families {
		c.ByFamily[rf.String()] = FamilyCounts{}
	}
	have, err := s.rib(ctx)
	if err != nil {
		return c, fmt.Errorf("bgp: read rib: %w", err)
	}
	bump := func(rf bgp.RouteFamily, f func(*FamilyCounts)) {
		fc := c.ByFamily[rf.String()]
		f(&fc)
		c.ByFamily[rf.String()] = fc
	}
	now := time.Now()
	for _, rf := range families {
		for k, d := range want.paths {
			if d.family != rf {
				continue
			}
			h, ok := have[k]
			if ok && h.fp == d.fp {
				c.Unchanged++
				bump(rf, func(f *FamilyCounts) { f.Unchanged++ })
				continue
			}
			p, err := apiutil.NewPath(d.nlri, false, d.attrs, now)
			if err != nil {
				return c, fmt.Errorf("bgp: path %s: %w", k, err)
			}
			if _, err := s.server.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
				return c, fmt.Errorf("bgp: announce %s: %w", k, err)
			}
			if ok {
				c.Replaced++
				bump(rf, func(f *FamilyCounts) { f.Replaced++ })
			} else {
				c.Added++
				bump(rf, func(f *FamilyCounts) { f.Added++ })
			}
		}
	}
	for k, h := range have {
		if _, ok := want.paths[k]; ok {
			continue
		}
		// Always with a Path: DeletePath without one withdraws everything.
		if h.path == nil {
			continue
		}
		if err := s.server.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: h.path.Family, Path: h.path}); err != nil {
			return c, fmt.Errorf("bgp: withdraw %s: %w", k, err)
		}
		rf := bgp.AfiSafiToRouteFamily(uint16(h.path.Family.Afi), uint8(h.path.Family.Safi))
		c.Withdrawn++
		bump(rf, func(f *FamilyCounts) { f.Withdrawn++ })
	}
	return c, nil
}
