package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
)

// GoBGP applies per-neighbor policies only to route-server clients (which
// get no AS prepended: wrong for routers). So per-neighbor target limits
// are one global export policy whose statements each name the receiving
// neighbor in a neighbor set: "to neighbor N, reject paths carrying none
// of N's targets' large communities". A second, import policy drops every
// path a peer sends us: the speaker only announces, and a route reflector
// sending a full table must not fill our RIB or be re-advertised.
//
// GoBGP withdraws a path from a neighbor only when the path it replaces
// passes the export policy in force, and a soft reset out re-sends what is
// accepted but withdraws nothing. Hence the order in which limits change
// (see apply): widen first, reconcile, then narrow, and withdraw what a
// narrowed neighbor must lose with a marker (withdrawMarker).
const (
	importPolicy = "asfence-import"
	exportPolicy = "asfence-export"
	allPeersSet  = "asfence-all-peers"
	// withdrawMarker is the large community <asn>:667:0: a path re-added
	// with it is rejected for narrowed neighbors while its previous
	// version still passes, which makes GoBGP send them a withdrawal.
	withdrawMarkerLocal1 = 667
)

// limits maps each neighbor with a target limit (by address) to the
// target IDs it may get; neighbors without a limit are absent.
type limits map[string][]uint32

func (l limits) equal(m limits) bool {
	return maps.EqualFunc(l, m, func(a, b []uint32) bool { return slices.Equal(a, b) })
}

// accepts reports whether neighbor addr gets a path tagged with ids.
func (l limits) accepts(addr string, ids []uint32) bool {
	allowed, limited := l[addr]
	if !limited {
		return true
	}
	for _, id := range ids {
		if slices.Contains(allowed, id) {
			return true
		}
	}
	return false
}

// computeLimits derives the limits from the config and the target IDs of
// the last Intent (a target it does not contain allows nothing).
func computeLimits(c *Config, targetIDs map[string]uint32) limits {
	l := limits{}
	for _, n := range c.Neighbors {
		if n.Feed && len(n.AnnounceKinds()) == 0 {
			l[n.Address] = []uint32{} // a feed neighbor gets nothing
			continue
		}
		if len(n.Targets) == 0 {
			continue
		}
		ids := []uint32{}
		for _, t := range n.Targets {
			if id, ok := targetIDs[t]; ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		l[n.Address] = ids
	}
	return l
}

// union allows what either allows.
func union(a, b limits) limits {
	u := limits{}
	for addr, x := range a {
		y, ok := b[addr]
		if !ok {
			continue // unlimited in b
		}
		ids := append(slices.Clone(x), y...)
		slices.Sort(ids)
		u[addr] = slices.Compact(ids)
	}
	return u
}

// wider lists the neighbors that may get more under b than under a.
func wider(a, b limits) []string {
	var out []string
	for addr, x := range a {
		y, ok := b[addr]
		if !ok || slices.ContainsFunc(y, func(id uint32) bool { return !slices.Contains(x, id) }) {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

// installPolicy replaces the defined sets and policies for limits l, with
// withdrawal markers rejected for the neighbors in marked. The global
// assignments made at start refer to the policies by name and stay.
func (s *Speaker) installPolicy(ctx context.Context, l limits, marked []string) error {
	sets := []*api.DefinedSet{{DefinedType: api.DefinedType_NEIGHBOR, Name: allPeersSet, List: []string{"0.0.0.0/0", "::/0"}}}
	var stmts []*api.Statement
	addrs := slices.Sorted(maps.Keys(l))
	for _, addr := range addrs {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("bgp: neighbor %q: %w", addr, err)
		}
		ns, ls := "asfence-nbr-"+addr, "asfence-tgt-"+addr
		regs := []string{"^$"} // matches no large community
		if len(l[addr]) > 0 {
			regs = nil
			for _, id := range l[addr] {
				regs = append(regs, fmt.Sprintf("^%d:666:%d$", s.cfg.ASN, id))
			}
		}
		sets = append(sets,
			&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: ns, List: []string{netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String()}},
			&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: ls, List: regs})
		stmts = append(stmts, &api.Statement{
			Name: "targets-" + addr,
			Conditions: &api.Conditions{
				NeighborSet:       &api.MatchSet{Type: api.MatchSet_ANY, Name: ns},
				LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_INVERT, Name: ls},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
	}
	if len(marked) > 0 {
		var list []string
		for _, addr := range marked {
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return fmt.Errorf("bgp: neighbor %q: %w", addr, err)
			}
			list = append(list, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String())
		}
		sets = append(sets,
			&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: "asfence-narrowed", List: list},
			&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: "asfence-marker", List: []string{fmt.Sprintf("^%d:%d:0$", s.cfg.ASN, withdrawMarkerLocal1)}})
		stmts = append(stmts, &api.Statement{
			Name: "withdraw-marked",
			Conditions: &api.Conditions{
				NeighborSet:       &api.MatchSet{Type: api.MatchSet_ANY, Name: "asfence-narrowed"},
				LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_ANY, Name: "asfence-marker"},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
	}
	req := &api.SetPoliciesRequest{
		DefinedSets: sets,
		Policies: []*api.Policy{
			{Name: importPolicy, Statements: []*api.Statement{{
				Name:       "reject-from-peers",
				Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: allPeersSet}},
				Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
			}}},
			{Name: exportPolicy, Statements: stmts},
		},
	}
	if err := s.server.SetPolicies(ctx, req); err != nil {
		return fmt.Errorf("bgp: set policies: %w", err)
	}
	return nil
}

// assignPolicies attaches both policies to the global RIB (once, at start).
func (s *Speaker) assignPolicies(ctx context.Context) error {
	for _, a := range []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_ACCEPT, Policies: []*api.Policy{{Name: importPolicy}}},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_ACCEPT, Policies: []*api.Policy{{Name: exportPolicy}}},
	} {
		if err := s.server.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("bgp: assign policy %s: %w", a.Policies[0].Name, err)
		}
	}
	return nil
}
