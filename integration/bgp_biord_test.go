//go:build !race

// bio-rd's BGP server has data races of its own (Metrics and LocRIB.Dump
// against its FSM), so this test stays out of -race runs.

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	bnet "github.com/bio-routing/bio-rd/net"
	biobgp "github.com/bio-routing/bio-rd/protocols/bgp/server"
	"github.com/bio-routing/bio-rd/route"
	"github.com/bio-routing/bio-rd/routingtable/filter"
	"github.com/bio-routing/bio-rd/routingtable/vrf"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
)

// TestBGPBioRD checks the RTBH routes with a second, independent BGP
// implementation in Go: bio-rd's server as a passive unicast eBGP peer
// (it never stops, hence its own address and port). It must hold every
// prefix of the embedded Intent with the discard next hop, BLACKHOLE,
// NO_EXPORT, the target tags and our AS in the path.
func TestBGPBioRD(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	in := embeddedIntent(t)
	want := expectRTBH(in)
	local, bioAddr := lab.Loopback(t), lab.Loopback(t)
	port := lab.FreePort(t, bioAddr)
	const bioASN = 65002

	v := vrf.NewUntrackedVRF("asfence", 0) // not in bio-rd's global VRF registry
	if _, err := v.CreateIPv4UnicastLocRIB("inet.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateIPv6UnicastLocRIB("inet6.0"); err != nil {
		t.Fatal(err)
	}
	b4 := bioAddr.As4()
	srv := biobgp.NewBGPServer(biobgp.BGPServerConfig{
		RouterID: uint32(b4[0])<<24 | uint32(b4[1])<<16 | uint32(b4[2])<<8 | uint32(b4[3]), DefaultVRF: v,
		ListenAddrsByVRF: map[string][]string{v.Name(): {netip.AddrPortFrom(bioAddr, uint16(port)).String()}},
	})
	srv.Start()
	peerIP, err := bnet.IPFromString(local.String())
	if err != nil {
		t.Fatal(err)
	}
	localIP, err := bnet.IPFromString(bioAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	err = srv.AddPeer(biobgp.PeerConfig{
		AdminEnabled: true, Passive: true, // bio-rd dials port 179 only: it waits for us
		AdvertiseIPv4MultiProtocol: true, // else its OPEN offers IPv6 only and no IPv4 unicast is sent
		LocalAS:                    bioASN, PeerAS: speakerASN,
		PeerAddress: peerIP.Ptr(), LocalAddress: localIP.Ptr(),
		HoldTime: 90 * time.Second, KeepAlive: 30 * time.Second, ReconnectInterval: time.Second,
		RouterID: srv.RouterID(),
		IPv4:     &biobgp.AddressFamilyConfig{ImportFilterChain: filter.NewAcceptAllFilterChain(), ExportFilterChain: filter.NewDrainFilterChain()},
		IPv6:     &biobgp.AddressFamilyConfig{ImportFilterChain: filter.NewAcceptAllFilterChain(), ExportFilterChain: filter.NewDrainFilterChain()},
		VRF:      v,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.DisposePeer(v, peerIP.Ptr()) })

	n := bgp.NeighborConfig{Address: bioAddr.String(), Port: port, ASN: bioASN, LocalAddress: local.String(),
		Families: []string{bgp.FamilyIPv4, bgp.FamilyIPv6}, AllowEBGP: true, Multihop: true, ConnectRetry: 1}
	sp := startSpeaker(t, local, in, n)

	wantN := countIn(want, lab.IPv4Unicast) + countIn(want, lab.IPv6Unicast)
	err = lab.Eventually(ctx, 60*time.Second, func(context.Context) error {
		if got := int(v.IPv4UnicastRIB().Count() + v.IPv6UnicastRIB().Count()); got != wantN {
			ps, _ := sp.Peers(ctx)
			return fmt.Errorf("bio-rd holds %d routes, want %d (speaker: %+v)", got, wantN, ps)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	check := func(fam lab.Family, nh string, rs []*route.Route) {
		for _, r := range rs {
			pfx, err := netip.ParsePrefix(r.Prefix().String())
			if err != nil {
				t.Fatal(err)
			}
			e, ok := want[lab.Route{Family: fam, Prefix: pfx}.Key()]
			paths := r.Paths()
			switch {
			case !ok:
				t.Errorf("bio-rd holds unexpected %s", pfx)
			case len(paths) != 1 || paths[0].BGPPath == nil:
				t.Errorf("bio-rd: %s has %d paths", pfx, len(paths))
			default:
				p := paths[0]
				comms := bioList(p.BGPPath.CommunitiesString())
				large := bioList(p.BGPPath.LargeCommunitiesString())
				asPath := p.BGPPath.ASPath.String()
				if p.NextHop().String() != nh || !slices.Equal(comms, []string{"65535:65281", "65535:666"}) ||
					!slices.Equal(large, e.large) || asPath != fmt.Sprint(speakerASN) {
					if bad++; bad <= 10 {
						t.Errorf("bio-rd: %s nh %s communities %v large %v as-path %q; want %s, BLACKHOLE+NO_EXPORT, %v, %d",
							pfx, p.NextHop(), comms, large, asPath, nh, e.large, speakerASN)
					}
				}
			}
		}
	}
	check(lab.IPv4Unicast, bgp.DefaultNextHopV4, v.IPv4UnicastRIB().Dump())
	check(lab.IPv6Unicast, bgp.DefaultNextHopV6, v.IPv6UnicastRIB().Dump())
}

// bioList turns bio-rd's "(65535,666) (65535,65281)" into sorted "A:B".
func bioList(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		out = append(out, strings.ReplaceAll(strings.Trim(f, "()"), ",", ":"))
	}
	slices.Sort(out)
	return out
}
