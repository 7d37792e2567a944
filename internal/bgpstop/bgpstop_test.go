package bgpstop_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/bgpstop"
	api "github.com/osrg/gobgp/v3/api"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// TestStopWhileReceiving stops a GoBGP server while its neighbor is
// sending UPDATEs, several times: under the race detector a plain
// BgpServer.Stop is reported here (GoBGP v3 zeroes its global config
// while the receive goroutine reads it). Stop must also end the session
// (the neighbor sees it go down) and return no error.
func TestStopWhileReceiving(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), stopWhileReceiving)
	}
}

func stopWhileReceiving(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := lab.Loopback(t)
	port := lab.FreePort(t, addr)
	feeder := lab.NewFeeder(t, lab.Config{ASN: 65001, Sessions: []lab.Session{{Addr: addr, Port: port, ASN: 65002}}})

	quiet := gobgplog.NewDefaultLogger()
	quiet.SetLevel(gobgplog.ErrorLevel)
	s := server.NewBgpServer(server.LoggerOption(quiet))
	go s.Serve()
	g := &api.Global{Asn: 65002, RouterId: addr.String(), ListenPort: int32(port), ListenAddresses: []string{addr.String()}}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})
	p := &api.Peer{
		Conf:         &api.PeerConf{NeighborAddress: feeder.Addr().String(), PeerAsn: 65001},
		Transport:    &api.Transport{LocalAddress: addr.String(), PassiveMode: true},
		EbgpMultihop: &api.EbgpMultihop{Enabled: true, MultihopTtl: 255},
		AfiSafis:     []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		t.Fatal(err)
	}
	if err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		if up, err := feeder.Established(ctx, addr); err != nil || !up {
			return fmt.Errorf("session not established (%v)", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The feeder flaps a block of routes until the test ends; the stop
	// comes once the server has received UPDATEs.
	done := make(chan struct{})
	go func() {
		defer close(done)
		routes := make([]lab.Route, 64)
		for j := range routes {
			routes[j] = lab.Route{Family: lab.IPv4Unicast, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(j), 0}), 24), ASPath: []uint32{65001}}
		}
		for ctx.Err() == nil {
			if feeder.Announce(ctx, routes...) != nil || feeder.Withdraw(ctx, routes...) != nil {
				return
			}
		}
	}()
	if err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		n := 0
		err := s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			n += int(p.GetState().GetMessages().GetReceived().GetUpdate())
		})
		if err == nil && n == 0 {
			err = fmt.Errorf("no UPDATE received yet")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := bgpstop.Stop(ctx, s); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		if up, err := feeder.Established(ctx, addr); err != nil || up {
			return fmt.Errorf("the neighbor still sees the session up (%v)", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}
