package bgp

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/policy"
)

// testLog discards everything but errors, so a failing test shows them.
func testLog(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testWriter{t})
		l.SetLevel(logrus.InfoLevel)
	}
	return logrus.NewEntry(l)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// intent builds an Intent: target name -> (id, prefixes).
func intent(targets ...tgt) *policy.Intent {
	in := &policy.Intent{}
	for _, t := range targets {
		ti := policy.TargetIntent{Name: t.name, ID: t.id}
		for _, s := range t.prefixes {
			ti.Prefixes = append(ti.Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix(s)})
		}
		in.Targets = append(in.Targets, ti)
	}
	return in
}

type tgt struct {
	name     string
	id       uint32
	prefixes []string
}

// receiver is a second GoBGP server in the test: a real BGP peer over a
// real socket, which lets tests read exactly what the speaker sent.
type receiver struct {
	s    *server.BgpServer
	addr netip.Addr
	port int
}

var allFamilies = []*api.Family{
	{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
	{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST},
	{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST},
	{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_FLOW_SPEC_UNICAST},
}

// newReceiver listens on a fresh loopback address and accepts the
// speakers at the given addresses (AS peerASN) with all four families.
func newReceiver(t *testing.T, asn, peerASN uint32, speakers ...netip.Addr) *receiver {
	t.Helper()
	addr := lab.Loopback(t)
	return newReceiverAt(t, addr, lab.FreePort(t, addr), asn, peerASN, speakers...)
}

// newReceiverAt is newReceiver listening on addr:port.
func newReceiverAt(t *testing.T, addr netip.Addr, port int, asn, peerASN uint32, speakers ...netip.Addr) *receiver {
	t.Helper()
	r := &receiver{addr: addr, port: port}
	r.s = server.NewBgpServer(server.LoggerOption(newGoBGPLogger(testLog(t))))
	go r.s.Serve()
	ctx := context.Background()
	err := r.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: r.addr.String(),
		ListenPort: int32(r.port), ListenAddresses: []string{r.addr.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.s.Stop)
	for _, sp := range speakers {
		var afs []*api.AfiSafi
		for _, f := range allFamilies {
			afs = append(afs, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}})
		}
		p := &api.Peer{Conf: &api.PeerConf{NeighborAddress: sp.String(), PeerAsn: peerASN},
			Transport: &api.Transport{PassiveMode: true, LocalAddress: r.addr.String()}, AfiSafis: afs}
		if asn != peerASN {
			p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
		}
		if err := r.s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// neighbor is the speaker's neighbor config for this receiver.
func (r *receiver) neighbor(asn uint32, local netip.Addr) NeighborConfig {
	return NeighborConfig{Address: r.addr.String(), Port: r.port, ASN: asn, LocalAddress: local.String(),
		ConnectRetry: 1, Multihop: true}
}

// iBGPReceiver is the common setup: a receiver in AS65001 and the iBGP
// neighbor config for it, both families, RTBH and FlowSpec, from local.
func iBGPReceiver(t *testing.T) (local netip.Addr, r *receiver, n NeighborConfig) {
	t.Helper()
	local = lab.Loopback(t)
	r = newReceiver(t, 65001, 65001, local)
	n = r.neighbor(65001, local)
	n.Announce = []string{AnnounceBlackhole, AnnounceFlowSpec}
	n.Families = []string{FamilyIPv4, FamilyIPv6}
	return local, r, n
}

// got is one received path, decoded.
type got struct {
	family string
	nlri   string
	attrs  map[bgp.BGPAttrType]bgp.PathAttributeInterface
}

func (g got) nextHop() string {
	if a, ok := g.attrs[bgp.BGP_ATTR_TYPE_NEXT_HOP]; ok {
		return a.(*bgp.PathAttributeNextHop).Value.String()
	}
	if a, ok := g.attrs[bgp.BGP_ATTR_TYPE_MP_REACH_NLRI]; ok {
		return a.(*bgp.PathAttributeMpReachNLRI).Nexthop.String()
	}
	return ""
}

func (g got) communities() []string {
	var out []string
	if a, ok := g.attrs[bgp.BGP_ATTR_TYPE_COMMUNITIES]; ok {
		for _, c := range a.(*bgp.PathAttributeCommunities).Value {
			out = append(out, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
		}
	}
	sort.Strings(out)
	return out
}

func (g got) large() []string {
	var out []string
	if a, ok := g.attrs[bgp.BGP_ATTR_TYPE_LARGE_COMMUNITY]; ok {
		for _, l := range a.(*bgp.PathAttributeLargeCommunities).Values {
			out = append(out, l.String())
		}
	}
	sort.Strings(out)
	return out
}

func (g got) ext() []string {
	var out []string
	if a, ok := g.attrs[bgp.BGP_ATTR_TYPE_EXTENDED_COMMUNITIES]; ok {
		for _, e := range a.(*bgp.PathAttributeExtendedCommunities).Value {
			out = append(out, e.String())
		}
	}
	return out
}

// paths returns what the receiver holds, keyed "family nlri".
func (r *receiver) paths(t *testing.T) map[string]got {
	t.Helper()
	out := map[string]got{}
	for _, f := range allFamilies {
		err := r.s.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f}, func(d *api.Destination) {
			for _, p := range d.Paths {
				nlri, err := apiutil.GetNativeNlri(p)
				if err != nil {
					t.Error(err)
					return
				}
				attrs, err := apiutil.GetNativePathAttributes(p)
				if err != nil {
					t.Error(err)
					return
				}
				rf := bgp.AfiSafiToRouteFamily(nlri.AFI(), nlri.SAFI())
				g := got{family: rf.String(), nlri: nlri.String(), attrs: map[bgp.BGPAttrType]bgp.PathAttributeInterface{}}
				for _, a := range attrs {
					g.attrs[a.GetType()] = a
				}
				out[g.family+" "+g.nlri] = g
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// count is the number of paths the receiver holds in all families.
func (r *receiver) count(t *testing.T) int {
	t.Helper()
	n := 0
	for _, f := range allFamilies {
		res, err := r.s.GetTable(context.Background(), &api.GetTableRequest{TableType: api.TableType_GLOBAL, Family: f})
		if err != nil {
			t.Fatal(err)
		}
		n += int(res.NumPath)
	}
	return n
}

// waitCount waits until the receiver holds n paths.
func (r *receiver) waitCount(t *testing.T, n int) {
	t.Helper()
	err := lab.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		if c := r.count(t); c != n {
			return fmt.Errorf("receiver holds %d paths, want %d", c, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// established waits until the speaker reports every neighbor established.
func established(t *testing.T, s *Speaker) []PeerStatus {
	t.Helper()
	var ps []PeerStatus
	err := lab.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		var err error
		if ps, err = s.Peers(ctx); err != nil {
			return err
		}
		for _, p := range ps {
			if p.State != "established" {
				return fmt.Errorf("peer %s is %s (%s)", p.Address, p.State, p.LastError)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if !p.Established || p.EstablishedSince.IsZero() {
			t.Fatalf("peer %s is %s but not marked established (since %v)", p.Address, p.State, p.EstablishedSince)
		}
	}
	return ps
}

// startSpeaker starts a speaker at a fresh loopback address.
func startSpeaker(t *testing.T, o Options, in *policy.Intent) *Speaker {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background(), false) })
	return s
}

// waitPaths waits until the receiver holds exactly the keys given
// ("family nlri"), and returns what it holds.
func (r *receiver) waitPaths(t *testing.T, keys ...string) map[string]got {
	t.Helper()
	var ps map[string]got
	err := lab.Eventually(context.Background(), 30*time.Second, func(context.Context) error {
		ps = r.paths(t)
		for _, k := range keys {
			if _, ok := ps[k]; !ok {
				return fmt.Errorf("receiver lacks %s", k)
			}
		}
		if len(ps) != len(keys) {
			var extra []string
			for k := range ps {
				if !slices.Contains(keys, k) {
					extra = append(extra, k)
				}
			}
			return fmt.Errorf("receiver holds %d paths, want %d; extra: %v", len(ps), len(keys), extra)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
