package daemon

import (
	"context"

	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/policy"
)

// Speaker is the embedded BGP speaker as the daemon drives it.
type Speaker interface {
	// Start loads the Intent before any neighbor is added, so peers get the
	// whole set in their first table transfer.
	Start(ctx context.Context, in *policy.Intent) error
	// Resume is Start with the set a previous process announced (after a
	// crash or restart): peers holding it are told it was kept (graceful
	// restart), so they drop nothing that is still in it.
	Resume(ctx context.Context, in *policy.Intent) error
	// Apply changes the announced set to in, sending only the delta; the
	// map counts routes added and withdrawn.
	Apply(ctx context.Context, in *policy.Intent) (map[string]int, error)
	Peers(ctx context.Context) ([]api.Peer, error)
	// Reconfigure applies a reloaded config's bgp:, blackhole: and flowspec:
	// blocks without resetting sessions that did not change.
	Reconfigure(ctx context.Context, cfg *config.Config) error
	// Stop ends the sessions; graceful keeps the routes on the peers
	// (graceful restart) until the daemon is back.
	Stop(ctx context.Context, graceful bool) error
}
