package lab

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
)

// The inputs below are output of BIRD 2.0.12 and FRR 8.4.4, captured
// across a restart of asfence (with and without the restart flags).

const birdProtoRestarted = `    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4 ipv6
      Route refresh
      Extended next hop
        IPv6 nexthop: ipv4
      Graceful restart
        Restart time: 120
        Restart recovery
        AF supported: ipv4 ipv6
        AF preserved: ipv4 ipv6
      4-octet AS numbers
      Hostname: vm
    Session:          internal multihop AS4
`

const birdProtoFresh = `    Local capabilities
      Graceful restart
        Restart recovery
        AF preserved: ipv4
    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4 ipv6
      Graceful restart
        Restart time: 120
        AF supported: ipv4 ipv6
        AF preserved:
      4-octet AS numbers
    Session:          internal multihop AS4
`

func TestParseBIRDNeighborGR(t *testing.T) {
	for _, c := range []struct {
		out  string
		want GracefulRestart
	}{
		{birdProtoRestarted, GracefulRestart{Advertised: true, Restarting: true, Preserved: []Family{IPv4Unicast, IPv6Unicast}}},
		// The local capabilities are not the neighbor's.
		{birdProtoFresh, GracefulRestart{Advertised: true}},
		{"    Neighbor capabilities\n      Route refresh\n    Session: x\n", GracefulRestart{}},
	} {
		got, err := parseBIRDNeighborGR(c.out)
		if err != nil || got.Advertised != c.want.Advertised || got.Restarting != c.want.Restarting || !slices.Equal(got.Preserved, c.want.Preserved) {
			t.Errorf("parse:\n%s\ngot %+v (%v), want %+v", c.out, got, err, c.want)
		}
	}
	if _, err := parseBIRDNeighborGR("peer0 BGP --- start Active\n"); err == nil {
		t.Error("no neighbor capabilities: no error")
	}
}

func TestParseFRRGR(t *testing.T) {
	var info map[string]any
	raw := `{"endOfRibRecv": {"ipv4Unicast": true, "ipv6Unicast": true}, "localGrMode": "Helper*", "remoteGrMode": "Restart", "rBit": true, "nBit": false,
 "ipv4Unicast": {"fBit": true, "endOfRibStatus": {"endOfRibRecv": true}}, "ipv6Unicast": {"fBit": false, "endOfRibStatus": {"endOfRibRecv": true}}}`
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		t.Fatal(err)
	}
	got := parseFRRGR("advertisedAndReceived", info)
	if !got.Advertised || !got.Restarting || !slices.Equal(got.Preserved, []Family{IPv4Unicast}) {
		t.Errorf("got %+v", got)
	}
	if got := parseFRRGR("advertised", nil); got.Advertised || got.Restarting || got.Preserved != nil {
		t.Errorf("no capability received: %+v", got)
	}
}

func TestRouteEvents(t *testing.T) {
	b := &BIRD{daemon: daemon{cfg: Config{Sessions: []Session{{Addr: netip.MustParseAddr("127.1.1.1")}, {Addr: netip.MustParseAddr("127.2.2.2")}}}}}
	birdLog := `2026-12-02 07:54:05.034 <TRACE> peer0: Neighbor graceful restart done
2026-12-02 07:54:05.400 <TRACE> peer0.ipv4 > ignored 58.87.80.0/22 0L 4G blackhole
2026-12-02 07:44:35.034 <TRACE> peer0.ipv4 > removed [sole] 139.199.10.0/23 0L 4G blackhole
2026-12-02 07:44:30.776 <TRACE> peer1.ipv4 > added [best] 43.145.0.0/18 0L 4G blackhole
2026-12-02 07:54:05.424 <TRACE> peer0.ipv6 > ignored 2402:4e00:c040::/44 0L 4G blackhole
2026-12-02 07:54:05.424 <TRACE> peer0.ipv4 < rejected by protocol 58.87.80.0/22 0L 4G blackhole
`
	evs, err := b.RouteEvents(birdLog, netip.MustParseAddr("127.1.1.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RouteEvent{
		{IPv4Unicast, netip.MustParsePrefix("58.87.80.0/22"), "ignored", ""},
		{IPv4Unicast, netip.MustParsePrefix("139.199.10.0/23"), "removed", ""},
		{IPv6Unicast, netip.MustParsePrefix("2402:4e00:c040::/44"), "ignored", ""},
	}
	checkEvents(t, "bird", evs, want)

	frrLog := `2026/12/02 07:54:03 BGP: [NJYMB-R5FFH] 127.1.1.1(vm) rcvd 115.159.88.0/23 IPv4 unicast...duplicate ignored
2026/12/02 07:44:35 BGP: [PMW16-C134F] 127.1.1.1(vm) rcvd 139.155.192.0/20 IPv4 unicast, flapped quicker than processing
2026/12/02 07:44:35 BGP: [YCKEM-GB33T] 127.1.1.1(vm) rcvd 118.126.100.0/23 IPv4 unicast
2026/12/02 07:44:35 BGP: [YCKEM-GB33T] 127.2.2.2(vm) rcvd 118.126.100.0/23 IPv4 unicast
2026/12/02 07:44:36 BGP: [PCFFM-WMARW] 127.1.1.1(vm) rcvd UPDATE wlen 0 attrlen 47 alen 3188
2026/12/02 08:09:10 BGP: [PAPP6-VDAWM] 127.1.1.1(vm) rcvd UPDATE about 2a00:1::/32 IPv6 unicast -- withdrawn
2026/12/02 07:54:03 BGP: [M59KS-A3ZXZ] bgp_update_receive: rcvd End-of-RIB for IPv4 Unicast from 127.1.1.1 in vrf default
`
	evs, err = (&FRR{}).RouteEvents(frrLog, netip.MustParseAddr("127.1.1.1"))
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, "frr", evs, []RouteEvent{
		{IPv4Unicast, netip.MustParsePrefix("115.159.88.0/23"), "duplicate", ""},
		{IPv4Unicast, netip.MustParsePrefix("139.155.192.0/20"), "flapped", ""},
		{IPv4Unicast, netip.MustParsePrefix("118.126.100.0/23"), "received", ""},
		{IPv6Unicast, netip.MustParsePrefix("2a00:1::/32"), "withdrawn", ""},
	})
}

func checkEvents(t *testing.T, name string, got, want []RouteEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d: %+v", name, len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.Line = ""
		if g != want[i] {
			t.Errorf("%s event %d: %+v, want %+v", name, i, g, want[i])
		}
	}
}
