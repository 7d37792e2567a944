package integration

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
)

// tableSender is BIRD sending ps (static routes) to the speaker at to,
// and importing what the speaker announces; debug: lab.Config.Debug.
func tableSender(tb testing.TB, ps []netip.Prefix, to netip.Addr, debug bool) *lab.BIRD {
	tb.Helper()
	b := lab.StartBIRD(tb, lab.Config{ASN: speakerASN, Extra: birdSenderConfig(ps), Debug: debug,
		Sessions: []lab.Session{{Addr: to, ASN: speakerASN, Passive: true, Families: []lab.Family{lab.IPv4Unicast}, Export: "filter rtbh_out"}}})
	err := lab.Eventually(context.Background(), 120*time.Second, func(ctx context.Context) error {
		out, err := b.Cmd(ctx, "show", "route", "table", "master4", "protocol", "rtbh", "count")
		if err != nil {
			return err
		}
		if m := birdTotalRE.FindStringSubmatch(out); m == nil || m[1] != fmt.Sprint(len(ps)) {
			return fmt.Errorf("sender BIRD: %s", out)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// peerStatus polls the speaker until cond accepts the neighbor's status.
func peerStatus(tb testing.TB, sp *bgp.Speaker, addr string, timeout time.Duration, cond func(bgp.PeerStatus) error) bgp.PeerStatus {
	tb.Helper()
	var got bgp.PeerStatus
	err := lab.Eventually(context.Background(), timeout, func(ctx context.Context) error {
		ps, err := sp.Peers(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Address == addr {
				got = p
				return cond(p)
			}
		}
		return fmt.Errorf("no neighbor %s", addr)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// capped reports whether the speaker closed the session for max_prefixes.
func capped(p bgp.PeerStatus) error {
	n := p.LastNotification
	if n == nil || n.Direction != bgp.NotificationSent || n.Code != 6 || n.Subcode != 1 {
		return fmt.Errorf("%s: %s, received %v, notification %v", p.Address, p.State, p.Received, n)
	}
	return nil
}

// TestNeighborMaxPrefixes: routers that send routes to the speaker (which
// only announces) are capped per neighbor: BIRD sending 1,500 routes to a
// neighbor with the default max_prefixes (1000) has its session closed by
// a Cease (maximum number of prefixes reached), BIRD's own log shows the
// session going down, and the speaker never holds more than the cap and
// one UPDATE from it; a
// neighbor with max_prefixes 2000 keeps its session and gets the RTBH
// routes.
func TestNeighborMaxPrefixes(t *testing.T) {
	lab.Short(t)
	ctx := context.Background()
	ps := benchPrefixes(0, 1500)
	local := lab.Loopback(t)
	over, under := tableSender(t, ps, local, true), tableSender(t, ps, local, false)
	nOver := neighborOf(over, local, speakerASN, bgp.AnnounceBlackhole)
	nOver.Families = []string{bgp.FamilyIPv4} // max_prefixes: the default
	nUnder := neighborOf(under, local, speakerASN, bgp.AnnounceBlackhole)
	nUnder.Families, nUnder.MaxPrefixes = []string{bgp.FamilyIPv4}, 2000
	in := embeddedIntent(t)
	sp := startSpeaker(t, local, in, nOver, nUnder)

	p := peerStatus(t, sp, nUnder.Address, 60*time.Second, func(p bgp.PeerStatus) error {
		if p.State != "established" || p.Received["ipv4-unicast"] != len(ps) {
			return fmt.Errorf("%s: %s, received %v", p.Address, p.State, p.Received)
		}
		return nil
	})
	if p.LastNotification != nil {
		t.Errorf("%s: notification %+v", p.Address, *p.LastNotification)
	}
	checkHolds(t, ctx, under, lab.IPv4Unicast, expectRTBH(in), true)

	p = peerStatus(t, sp, nOver.Address, 60*time.Second, capped)
	if bgp.DefaultMaxPrefixes != 1000 || p.LastNotification.Text != "cease: maximum number of prefixes reached" {
		t.Errorf("notification text %q", p.LastNotification.Text)
	}
	// BIRD saw its session go down after it was up. (It logs the Cease
	// itself only when it reads it before the connection is reset: GoBGP
	// closes it with BIRD's routes still unread.)
	err := lab.Eventually(ctx, 30*time.Second, func(context.Context) error {
		log := over.Log()
		up := strings.Index(log, "peer0: State changed to up")
		if up < 0 || !strings.Contains(log[up:], "peer0: State changed to start") {
			return fmt.Errorf("BIRD's log does not show its session going down:\n%s", tailString(log, 2000))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// What the capped neighbor sent is not kept: at most max_prefixes
	// while its session is up again, nothing while it is down.
	peerStatus(t, sp, nOver.Address, 60*time.Second, func(p bgp.PeerStatus) error {
		if n := p.Received["ipv4-unicast"]; n > 2*bgp.DefaultMaxPrefixes { // the cap and one UPDATE at most
			return fmt.Errorf("speaker holds %d routes from %s", n, p.Address)
		}
		return nil
	})
}

// BenchmarkBGPReceivedTable: the speaker's heap (after a GC) while BIRD
// sends it a 262,144-route table, without a cap (max_prefixes above the
// table) and with the default max_prefixes, against the heap before the
// session. Reported in MiB, and bytes per route held; the reference is
// what BIRD's routing tables and attributes take for the same table
// received from BIRD.
func BenchmarkBGPReceivedTable(b *testing.B) {
	lab.Short(b)
	const n = 262144
	ps := benchPrefixes(0, n)
	in := embeddedIntent(b)
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / (1 << 20)
	}
	// run returns the heap before the session, and the highest of the
	// heaps sampled every 500 ms for 10 s once the table was received
	// (uncapped) or the session was first closed by the cap (capped: the
	// neighbor keeps reconnecting and sending).
	run := func(limit uint32) (before, after float64) {
		local := lab.Loopback(b)
		sender := tableSender(b, ps, local, false)
		nb := neighborOf(sender, local, speakerASN, bgp.AnnounceBlackhole)
		nb.Families, nb.MaxPrefixes = []string{bgp.FamilyIPv4}, limit
		before = heap()
		sp := startSpeaker(b, local, in, nb)
		if limit > n {
			peerStatus(b, sp, nb.Address, 300*time.Second, func(p bgp.PeerStatus) error {
				if p.Received["ipv4-unicast"] != n {
					return fmt.Errorf("received %v", p.Received)
				}
				return nil
			})
		} else {
			peerStatus(b, sp, nb.Address, 300*time.Second, capped)
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for range 20 {
			after = max(after, heap())
			<-tick.C
		}
		_ = sp.Stop(context.Background(), false)
		sender.Stop()
		return before, after
	}
	for i := 0; i < b.N; i++ {
		// The reference: BIRD receiving the same table from BIRD.
		_, recv, src := birdToBIRD(b, ps)
		waitStats(b, recv, src, func(st lab.ChannelStats) bool { return st.Imported == n })
		ref := birdRouteMemory(b, recv)
		recv.Stop()
		u0, u1 := run(math.MaxUint32)
		c0, c1 := run(0) // the default
		b.ReportMetric(ref, "bird-MiB")
		b.ReportMetric(u0, "uncapped-before-MiB")
		b.ReportMetric(u1, "uncapped-MiB")
		b.ReportMetric((u1-u0)*(1<<20)/n, "uncapped-B/route")
		b.ReportMetric(c0, "capped-before-MiB")
		b.ReportMetric(c1, "capped-MiB")
	}
}

var birdMemoryRE = regexp.MustCompile(`(?m)^(Routing tables|Route attributes):\s+([0-9.]+)\s+(B|kB|MB|GB)`)

// birdRouteMemory is what BIRD's routes take ("show memory": routing
// tables and route attributes, effective), in MiB.
func birdRouteMemory(b *testing.B, bird *lab.BIRD) float64 {
	out, err := bird.Cmd(context.Background(), "show", "memory")
	if err != nil {
		b.Fatal(err)
	}
	unit := map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
	total, found := 0.0, 0
	for _, m := range birdMemoryRE.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			b.Fatal(err)
		}
		total += v * unit[m[3]]
		found++
	}
	if found != 2 {
		b.Fatalf("bird show memory: %s", out)
	}
	return total / (1 << 20)
}
