package bgp

import (
	"context"
	"fmt"
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
const (
	importPolicy = "asfence-import"
	exportPolicy = "asfence-export"
	allPeersSet  = "asfence-all-peers"
)

// policyState is the computed policy; equal states need no update.
type policyState struct {
	sets       []*api.DefinedSet
	statements []*api.Statement
	// restricted maps each neighbor with a target limit to its limit.
	restricted map[string]string
}

func (p *policyState) equal(q *policyState) bool {
	if p == nil || q == nil {
		return p == q
	}
	return fmt.Sprint(p.restricted) == fmt.Sprint(q.restricted)
}

// buildPolicy computes the policy for the neighbors, given the target
// IDs known from the last Intent (a target not in it matches nothing).
func buildPolicy(c *Config, targetIDs map[string]uint32) *policyState {
	ps := &policyState{sets: []*api.DefinedSet{{
		DefinedType: api.DefinedType_NEIGHBOR, Name: allPeersSet, List: []string{"0.0.0.0/0", "::/0"},
	}}, restricted: map[string]string{}}
	for _, n := range c.Neighbors {
		if len(n.Targets) == 0 {
			continue
		}
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			continue // Validate reports it
		}
		a = a.Unmap()
		ns := "asfence-nbr-" + a.String()
		ls := "asfence-tgt-" + a.String()
		var regs []string
		for _, t := range n.Targets {
			if id, ok := targetIDs[t]; ok {
				regs = append(regs, fmt.Sprintf("^%d:666:%d$", c.ASN, id))
			}
		}
		slices.Sort(regs)
		if len(regs) == 0 {
			regs = []string{"^$"} // matches no large community
		}
		ps.sets = append(ps.sets,
			&api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: ns, List: []string{netip.PrefixFrom(a, a.BitLen()).String()}},
			&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: ls, List: regs})
		ps.statements = append(ps.statements, &api.Statement{
			Name: "targets-" + a.String(),
			Conditions: &api.Conditions{
				NeighborSet:       &api.MatchSet{Type: api.MatchSet_ANY, Name: ns},
				LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_INVERT, Name: ls},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		})
		ps.restricted[n.Address] = fmt.Sprint(regs)
	}
	return ps
}

// installPolicy replaces the defined sets and policies. The global
// assignments made at start refer to the policies by name and stay.
func (s *Speaker) installPolicy(ctx context.Context, ps *policyState) error {
	req := &api.SetPoliciesRequest{
		DefinedSets: ps.sets,
		Policies: []*api.Policy{
			{Name: importPolicy, Statements: []*api.Statement{{
				Name:       "reject-from-peers",
				Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: allPeersSet}},
				Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
			}}},
			{Name: exportPolicy, Statements: ps.statements},
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
