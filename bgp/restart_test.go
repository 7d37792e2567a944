package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/asfence/asfence/integration/lab"
)

// openGR is the graceful-restart capability a receiver got in the
// speaker's OPEN: the Restart State bit and the families with the
// Forwarding State bit.
func (r *receiver) openGR(t *testing.T, speaker netip.Addr) (restarting bool, preserved []string) {
	t.Helper()
	found := false
	err := r.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: speaker.String()}, func(p *api.Peer) {
		cs, err := apiutil.UnmarshalCapabilities(p.State.RemoteCap)
		if err != nil {
			t.Error(err)
			return
		}
		for _, c := range cs {
			gr, ok := c.(*bgp.CapGracefulRestart)
			if !ok {
				continue
			}
			found = true
			restarting = gr.Flags&0x08 != 0
			for _, tu := range gr.Tuples {
				if tu.Flags&0x80 != 0 {
					preserved = append(preserved, bgp.AfiSafiToRouteFamily(tu.AFI, tu.SAFI).String())
				}
			}
		}
	})
	if err != nil || !found {
		t.Fatalf("receiver %s: no graceful restart capability from %s (%v)", r.addr, speaker, err)
	}
	return restarting, preserved
}

// localRestarting reads GoBGP's restart mode for a neighbor.
func (s *Speaker) localRestarting(t *testing.T, addr string) bool {
	t.Helper()
	var on bool
	err := s.server.ListPeer(context.Background(), &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
		on = p.GracefulRestart != nil && p.GracefulRestart.LocalRestarting
	})
	if err != nil {
		t.Fatal(err)
	}
	return on
}

// TestResumeTellsEveryNeighbor: a resumed speaker's OPEN carries the
// Restart State bit and the Forwarding State bit of each family it
// announces, also to a neighbor that comes up only after GoBGP has ended
// its restart mode for the first one: neighbors resume one at a time, the
// others waiting their turn. A fresh start claims neither.
func TestResumeTellsEveryNeighbor(t *testing.T) {
	lab.Parallel(t)
	ctx := context.Background()
	in := intent(tgt{"bytedance", 1, []string{"20.0.1.0/24", "2a00:1::/32"}})
	local := lab.Loopback(t)
	early := newReceiver(t, 65001, 65001, local)
	// The late neighbor's address and port, where nothing listens yet.
	lateAddr := lab.Loopback(t)
	latePort := lab.FreePort(t, lateAddr)
	fams := []string{FamilyIPv4, FamilyIPv6}
	n1, n2 := early.neighbor(65001, local), NeighborConfig{Address: lateAddr.String(), Port: latePort, ASN: 65001,
		LocalAddress: local.String(), ConnectRetry: 1, Multihop: true}
	n1.Families, n2.Families = fams, fams
	s, err := New(Options{Config: Config{ASN: 65001, RouterID: local.String(), Neighbors: []NeighborConfig{n1, n2}}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Resume(ctx, in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), false) })
	ps, err := s.Peers(ctx)
	if err != nil || len(ps) != 2 || ps[1].State != "idle (waiting its turn to resume)" {
		t.Fatalf("peers right after Resume: %+v (%v)", ps, err)
	}
	early.waitCount(t, 2)
	want := fmt.Sprint([]string{"ipv4-unicast", "ipv6-unicast"})
	if r, p := early.openGR(t, local); !r || fmt.Sprint(p) != want {
		t.Fatalf("first neighbor got R=%v F=%v, want R and F for %s", r, p, want)
	}
	// The first neighbor has all (it sends no End-of-RIB: GoBGP does not
	// wait for it) and GoBGP has left restart mode for every neighbor; the
	// late one's turn puts it back in restart mode before it connects.
	err = lab.Eventually(ctx, 30*time.Second, func(context.Context) error {
		if s.localRestarting(t, n1.Address) {
			return fmt.Errorf("neighbor %s still in restart mode", n1.Address)
		}
		if !s.localRestarting(t, n2.Address) {
			return fmt.Errorf("late neighbor %s not in restart mode", n2.Address)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	late := newReceiverAt(t, lateAddr, latePort, 65001, 65001, local)
	late.waitCount(t, 2)
	if r, p := late.openGR(t, local); !r || fmt.Sprint(p) != want {
		t.Fatalf("late neighbor got R=%v F=%v, want R and F for %s", r, p, want)
	}

	// A fresh start claims nothing.
	local2 := lab.Loopback(t)
	fresh := newReceiver(t, 65001, 65001, local2)
	n3 := fresh.neighbor(65001, local2)
	n3.Families = fams
	startSpeaker(t, Options{Config: Config{ASN: 65001, RouterID: local2.String(), Neighbors: []NeighborConfig{n3}}}, in)
	fresh.waitCount(t, 2)
	if r, p := fresh.openGR(t, local2); r || len(p) > 0 {
		t.Fatalf("fresh start: R=%v F=%v, want neither", r, p)
	}
}
