package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/policy"
)

// benchRoutes is the size of the RTBH set in the benchmarks.
const benchRoutes = 100_000

// benchPrefixes returns n consecutive /24s from 20.0.0.0 (no bogons up
// to 1M of them), skipping the first skip.
func benchPrefixes(skip, n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for i := skip; i < skip+n; i++ {
		v := uint32(20)<<24 + uint32(i)<<8
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24))
	}
	return out
}

func benchIntent(ps []netip.Prefix) *policy.Intent {
	tg := policy.TargetIntent{Name: "bench", ID: 1, Prefixes: make([]asn.Prefix, len(ps))}
	for i, p := range ps {
		tg.Prefixes[i] = asn.Prefix{Prefix: p}
	}
	return &policy.Intent{Targets: []policy.TargetIntent{tg}}
}

// churned is the set after 1 % churn: the first 1 % withdrawn, 1 % new.
func churned(n int) []netip.Prefix {
	k := n / 100
	return append(benchPrefixes(k, n-k), benchPrefixes(n, k)...)
}

// receiverBIRD is the measuring end: BIRD holding RTBH routes from one
// iBGP neighbor at from. addr may be zero (a fresh one).
func receiverBIRD(b *testing.B, addr, from netip.Addr, port int) *lab.BIRD {
	return lab.StartBIRD(b, lab.Config{Addr: addr, Port: port, ASN: speakerASN, Extra: lab.BIRDDiscardStatics,
		Sessions: []lab.Session{{Addr: from, ASN: speakerASN, Passive: true, Families: []lab.Family{lab.IPv4Unicast}}}})
}

var birdTotalRE = regexp.MustCompile(`(\d+) of \d+ routes`)

// birdToBIRD starts the reference: a sender BIRD exporting ps as static
// routes, which has loaded them all before the receiver starts listening
// (as the speaker has before it adds its neighbor), and the receiver.
func birdToBIRD(b *testing.B, ps []netip.Prefix) (sender, recv *lab.BIRD, src netip.Addr) {
	src, dst := lab.Loopback(b), lab.Loopback(b)
	port := lab.FreePort(b, dst)
	sender = lab.StartBIRD(b, lab.Config{Addr: src, ASN: speakerASN, Extra: birdSenderConfig(ps),
		Sessions: []lab.Session{{Addr: dst, Port: port, ASN: speakerASN, Families: []lab.Family{lab.IPv4Unicast}, Export: "filter rtbh_out"}}})
	// BIRD parses and loads about 100k static routes a second here.
	load := 60*time.Second + time.Duration(len(ps)/10_000)*time.Second
	err := lab.Eventually(context.Background(), load, func(ctx context.Context) error {
		out, err := sender.Cmd(ctx, "show", "route", "table", "master4", "protocol", "rtbh", "count")
		if err != nil {
			return err
		}
		if m := birdTotalRE.FindStringSubmatch(out); m == nil || m[1] != fmt.Sprint(len(ps)) {
			return fmt.Errorf("sender BIRD: %s", out)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return sender, receiverBIRD(b, dst, src, port), src
}

// waitStats polls BIRD's cheap channel counters until cond holds, and
// returns when it first did.
func waitStats(b *testing.B, bird *lab.BIRD, from netip.Addr, cond func(lab.ChannelStats) bool) time.Time {
	err := lab.Eventually(context.Background(), 120*time.Second, func(ctx context.Context) error {
		st, err := bird.ChannelStats(ctx, from, lab.IPv4Unicast)
		if err != nil {
			return err
		}
		if !cond(st) {
			return fmt.Errorf("bird: %+v", st)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return time.Now()
}

// establishedAt waits for BIRD's session and returns when BIRD says it came up.
func establishedAt(b *testing.B, bird *lab.BIRD, from netip.Addr) time.Time {
	return lab.WaitEstablished(b, context.Background(), bird, from, 60*time.Second).Since
}

// birdSenderConfig is BIRD exporting the same routes as static blackhole routes,
// with the same next hop and communities: the reference.
func birdSenderConfig(ps []netip.Prefix) string {
	var w strings.Builder
	w.WriteString(`filter rtbh_out {
  if source != RTS_STATIC then reject;
  bgp_next_hop = 192.0.2.1;
  bgp_community.add((65535,666));
  bgp_community.add((65535,65281));
  bgp_large_community.add((65001,666,1));
  accept;
}
protocol static rtbh {
  ipv4;
`)
	for _, p := range ps {
		fmt.Fprintf(&w, "  route %s blackhole;\n", p)
	}
	w.WriteString("}\n")
	return w.String()
}

// BenchmarkBGPPreload100k: from session Established until BIRD holds all
// 100k RTBH routes, asfence (preloaded speaker) against BIRD->BIRD.
func BenchmarkBGPPreload100k(b *testing.B) {
	lab.Short(b)
	ps := benchPrefixes(0, benchRoutes)
	in := benchIntent(ps)
	for i := 0; i < b.N; i++ {
		// asfence
		local := lab.Loopback(b)
		recv := receiverBIRD(b, netip.Addr{}, local, 0)
		n := neighborOf(recv, local, speakerASN, bgp.AnnounceBlackhole)
		n.Families = []string{bgp.FamilyIPv4}
		start := time.Now()
		startSpeaker(b, local, in, n)
		load := time.Since(start)
		t0 := establishedAt(b, recv, local)
		t1 := waitStats(b, recv, local, func(st lab.ChannelStats) bool { return st.Imported == benchRoutes })
		asf := t1.Sub(t0)
		b.ReportMetric(load.Seconds(), "load-s")
		b.ReportMetric(peakRSS(b, os.Getpid()), "peak-rss-MiB")

		// BIRD -> BIRD
		_, recv2, src := birdToBIRD(b, ps)
		t0 = establishedAt(b, recv2, src)
		t1 = waitStats(b, recv2, src, func(st lab.ChannelStats) bool { return st.Imported == benchRoutes })
		ref := t1.Sub(t0)
		b.ReportMetric(asf.Seconds(), "asfence-s")
		b.ReportMetric(ref.Seconds(), "bird-s")
		b.ReportMetric(asf.Seconds()/ref.Seconds(), "ratio")
	}
}

// BenchmarkBGPChurn100k: 1 % churn (1k withdrawn, 1k new) on 100k routes:
// UPDATE messages and routes BIRD received per route of the delta, and the
// time until BIRD converged, asfence against BIRD->BIRD (reconfigure).
func BenchmarkBGPChurn100k(b *testing.B) {
	lab.Short(b)
	ctx := context.Background()
	ps, ps2 := benchPrefixes(0, benchRoutes), churned(benchRoutes)
	delta := 2 * (benchRoutes / 100)
	for i := 0; i < b.N; i++ {
		local := lab.Loopback(b)
		recv := receiverBIRD(b, netip.Addr{}, local, 0)
		n := neighborOf(recv, local, speakerASN, bgp.AnnounceBlackhole)
		n.Families = []string{bgp.FamilyIPv4}
		sp := startSpeaker(b, local, benchIntent(ps), n)
		establishedAt(b, recv, local)
		waitStats(b, recv, local, func(st lab.ChannelStats) bool { return st.Imported == benchRoutes })
		st0, err := recv.ChannelStats(ctx, local, lab.IPv4Unicast)
		if err != nil {
			b.Fatal(err)
		}
		p0, err := sp.Peers(ctx)
		if err != nil {
			b.Fatal(err)
		}
		in2 := benchIntent(ps2)
		start := time.Now()
		c, err := sp.Apply(ctx, in2)
		if err != nil {
			b.Fatal(err)
		}
		applied := time.Since(start)
		if c.Added+c.Withdrawn != delta {
			b.Fatalf("Apply counts %+v, want a delta of %d", c, delta)
		}
		half := delta / 2
		t1 := waitStats(b, recv, local, func(st lab.ChannelStats) bool {
			return st.ImportUpdates-st0.ImportUpdates >= half && st.ImportWithdraws-st0.ImportWithdraws >= half && st.Imported == benchRoutes
		})
		asf := t1.Sub(start)
		st1, err := recv.ChannelStats(ctx, local, lab.IPv4Unicast)
		if err != nil {
			b.Fatal(err)
		}
		p1, err := sp.Peers(ctx)
		if err != nil {
			b.Fatal(err)
		}
		updates := p1[0].UpdatesSent - p0[0].UpdatesSent
		routes := (st1.ImportUpdates - st0.ImportUpdates) + (st1.ImportWithdraws - st0.ImportWithdraws)

		// BIRD -> BIRD: the sender reconfigured with the churned statics.
		sender, recv2, src := birdToBIRD(b, ps)
		establishedAt(b, recv2, src)
		waitStats(b, recv2, src, func(st lab.ChannelStats) bool { return st.Imported == benchRoutes })
		rs0, err := recv2.ChannelStats(ctx, src, lab.IPv4Unicast)
		if err != nil {
			b.Fatal(err)
		}
		conf, err := os.ReadFile(filepath.Join(filepath.Dir(sender.Socket()), "bird.conf"))
		if err != nil {
			b.Fatal(err)
		}
		newConf := strings.Replace(string(conf), birdSenderConfig(ps), birdSenderConfig(ps2), 1)
		path := filepath.Join(filepath.Dir(sender.Socket()), "bird2.conf")
		if err := os.WriteFile(path, []byte(newConf), 0o644); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := sender.Configure(ctx, path); err != nil {
			b.Fatal(err)
		}
		t1 = waitStats(b, recv2, src, func(st lab.ChannelStats) bool {
			return st.ImportUpdates-rs0.ImportUpdates >= half && st.ImportWithdraws-rs0.ImportWithdraws >= half && st.Imported == benchRoutes
		})
		ref := t1.Sub(start)
		b.ReportMetric(float64(updates)/float64(delta), "updates/delta")
		b.ReportMetric(float64(routes)/float64(delta), "routes/delta")
		b.ReportMetric(asf.Seconds(), "asfence-s")
		b.ReportMetric(applied.Seconds(), "apply-s")
		b.ReportMetric(ref.Seconds(), "bird-s")
	}
}

// birdPID is a BIRD's process ID, from its pid file.
func birdPID(b *testing.B, bird *lab.BIRD) int {
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(bird.Socket()), "bird.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatalf("bird.pid: %v", err)
	}
	return pid
}

// BenchmarkBGPScale1M: the speaker with 1M RTBH /24s applied and announced
// to one BIRD, then a 1 % change (10k withdrawn, 10k new) applied; the
// same 1M as BIRD static routes sent by a second BIRD is the reference.
// Metrics: load-s (Start: the paths into GoBGP before the neighbor is
// added), announce-s (Established until BIRD holds all), apply-s (Apply's
// own time) and converged-s (Apply until BIRD converged; goal <= 2 s),
// peak-rss-MiB (the benchmark process's VmHWM once all that is done:
// speaker, GoBGP's RIB, the Intents; goal <= 1.5 GB), and for the
// reference bird-announce-s, bird-converged-s (reconfigure until the
// receiver converged) and bird-rss-MiB (the sending BIRD's VmHWM).
func BenchmarkBGPScale1M(b *testing.B) {
	lab.Short(b)
	const n = 1_000_000
	ctx := context.Background()
	wait := func(bird *lab.BIRD, from netip.Addr, cond func(lab.ChannelStats) bool) time.Time {
		err := lab.Eventually(ctx, 15*time.Minute, func(ctx context.Context) error {
			st, err := bird.ChannelStats(ctx, from, lab.IPv4Unicast)
			if err != nil {
				return err
			}
			if !cond(st) {
				return fmt.Errorf("bird: %+v", st)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return time.Now()
	}
	half := n / 100
	churnedAll := func(st0 lab.ChannelStats) func(lab.ChannelStats) bool {
		return func(st lab.ChannelStats) bool {
			return st.ImportUpdates-st0.ImportUpdates >= half && st.ImportWithdraws-st0.ImportWithdraws >= half && st.Imported == n
		}
	}
	for i := 0; i < b.N; i++ {
		// The process holds the Intent it starts with, and the next one
		// only from the change on, as the daemon does; none of the
		// benchmark's own prefix lists.
		in := benchIntent(benchPrefixes(0, n))
		local := lab.Loopback(b)
		recv := receiverBIRD(b, netip.Addr{}, local, 0)
		nb := neighborOf(recv, local, speakerASN, bgp.AnnounceBlackhole)
		nb.Families = []string{bgp.FamilyIPv4}
		start := time.Now()
		sp := startSpeaker(b, local, in, nb)
		load := time.Since(start)
		t0 := establishedAt(b, recv, local)
		t1 := wait(recv, local, func(st lab.ChannelStats) bool { return st.Imported == n })
		st0, err := recv.ChannelStats(ctx, local, lab.IPv4Unicast)
		if err != nil {
			b.Fatal(err)
		}
		in2 := benchIntent(churned(n))
		start = time.Now()
		c, err := sp.Apply(ctx, in2)
		if err != nil {
			b.Fatal(err)
		}
		applied := time.Since(start)
		if c.Added+c.Withdrawn != 2*half || c.Replaced != 0 {
			b.Fatalf("Apply counts %+v, want a delta of %d", c, 2*half)
		}
		t2 := wait(recv, local, churnedAll(st0))
		b.ReportMetric(load.Seconds(), "load-s")
		b.ReportMetric(t1.Sub(t0).Seconds(), "announce-s")
		b.ReportMetric(applied.Seconds(), "apply-s")
		b.ReportMetric(t2.Sub(start).Seconds(), "converged-s")
		b.ReportMetric(peakRSS(b, os.Getpid()), "peak-rss-MiB")
		if err := sp.Stop(ctx, false); err != nil {
			b.Fatal(err)
		}
		recv.Stop()

		// BIRD -> BIRD with the same 1M static routes, then the same change.
		ps, ps2 := benchPrefixes(0, n), churned(n)
		sender, recv2, src := birdToBIRD(b, ps)
		t0 = establishedAt(b, recv2, src)
		t1 = wait(recv2, src, func(st lab.ChannelStats) bool { return st.Imported == n })
		rs0, err := recv2.ChannelStats(ctx, src, lab.IPv4Unicast)
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Dir(sender.Socket())
		conf, err := os.ReadFile(filepath.Join(dir, "bird.conf"))
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, "bird2.conf")
		if err := os.WriteFile(path, []byte(strings.Replace(string(conf), birdSenderConfig(ps), birdSenderConfig(ps2), 1)), 0o644); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := sender.Configure(ctx, path); err != nil {
			b.Fatal(err)
		}
		t2 = wait(recv2, src, churnedAll(rs0))
		b.ReportMetric(t1.Sub(t0).Seconds(), "bird-announce-s")
		b.ReportMetric(t2.Sub(start).Seconds(), "bird-converged-s")
		b.ReportMetric(peakRSS(b, birdPID(b, sender)), "bird-rss-MiB")
	}
}
