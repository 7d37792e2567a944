package bgp

import (
	"context"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// installed is a path in the RIB: read back (path), or as the speaker
// built it (built).
type installed struct {
	path  *api.Path
	built *desiredPath
	fp    string
}

// rib reads the speaker's own paths of every family, keyed like desired
// paths, in wire form (decoding 100k paths through the API's protobuf
// form costs seconds). Paths from peers never get in (import policy), but
// are skipped here as well.
func (s *Speaker) rib(ctx context.Context) (map[string]installed, error) {
	out := map[string]installed{}
	var ferr error
	for _, rf := range families {
		afi, safi := bgp.RouteFamilyToAfiSafi(rf)
		fam := &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_Safi(safi)}
		prefix := rf.String() + "|"
		err := s.server.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: fam, EnableOnlyBinary: true}, func(d *api.Destination) {
			for _, p := range d.Paths {
				if ferr != nil || p.NeighborIp != "<nil>" && p.NeighborIp != "" {
					continue
				}
				fp, err := fingerprintWire(p.PattrsBinary)
				if err != nil {
					ferr = fmt.Errorf("rib %s %s: %w", rf, d.Prefix, err)
					return
				}
				out[prefix+d.Prefix] = installed{path: p, fp: fp}
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
//
// What is installed is read from the RIB (ListPath) unless the speaker
// holds a verified copy: the paths its last successful reconcile left
// there (only the speaker writes its RIB: peers' paths are rejected on
// import). Any error drops the copy, so the next run reads the RIB again.
func (s *Speaker) reconcile(ctx context.Context, want *desiredSet) (c Counts, err error) {
	c = Counts{ByFamily: map[string]FamilyCounts{}}
	for _, rf := range families {
		c.ByFamily[rf.String()] = FamilyCounts{}
	}
	defer func() {
		if err != nil {
			s.installed = nil
		} else {
			s.installed = want.paths
		}
	}()
	have := map[string]installed{}
	if s.installed != nil {
		for k, d := range s.installed {
			have[k] = installed{fp: d.fp, built: d}
		}
	} else if have, err = s.rib(ctx); err != nil {
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
			nlri, attrs := d.built()
			p, err := apiutil.NewPath(nlri, false, attrs, now)
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
		p := h.path
		if p == nil {
			nlri, attrs := h.built.built()
			if p, err = apiutil.NewPath(nlri, false, attrs, now); err != nil {
				return c, fmt.Errorf("bgp: path %s: %w", k, err)
			}
		}
		// Always with a Path: DeletePath without one withdraws everything.
		if err := s.server.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p}); err != nil {
			return c, fmt.Errorf("bgp: withdraw %s: %w", k, err)
		}
		rf := bgp.AfiSafiToRouteFamily(uint16(p.Family.Afi), uint8(p.Family.Safi))
		c.Withdrawn++
		bump(rf, func(f *FamilyCounts) { f.Withdrawn++ })
	}
	return c, nil
}
