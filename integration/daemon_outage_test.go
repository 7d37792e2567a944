package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
	"github.com/asfence/asfence/internal/store"
)

// irrData is RPSL text with a route/route6 object for every prefix of the
// embedded snapshot (real registry data) whose origin keep accepts, and
// the AS-TENCENT set naming the Tencent seed ASNs.
func irrData(t *testing.T, keep func(target string, origin uint32, i int) bool) string {
	t.Helper()
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("as-set: AS-TENCENT\nmembers: AS45090, AS132203\nsource: TEST\n\n")
	for _, tg := range s.Targets {
		for i, p := range tg.Prefixes {
			for _, o := range p.Origins {
				if !keep(tg.Name, o, i) {
					continue
				}
				class := "route"
				if p.Prefix.Addr().Is6() {
					class = "route6"
				}
				fmt.Fprintf(&b, "%s: %s\norigin: AS%d\nsource: TEST\n\n", class, p.Prefix, o)
			}
		}
	}
	return b.String()
}

// startIRRd serves RPSL text on addr (host:0 for a free port).
func startIRRd(t *testing.T, addr, rpsl string) *irrd.Server {
	t.Helper()
	idx := irr.NewIndex()
	if err := idx.AddRPSL("test.rpsl", strings.NewReader(rpsl)); err != nil {
		t.Fatal(err)
	}
	s, err := irrd.Listen(addr, idx, irrd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// irrSources is the sources: block for IRR servers.
func irrSources(addrs ...string) string {
	var b strings.Builder
	b.WriteString("sources:\n  timeout: 3s\n  irr:\n    servers:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "      - address: %s\n        sources: [TEST]\n        timeout: 2s\n", a)
	}
	return b.String()
}

// TestDaemonRegistryOutage: with registry servers stopped, slowed past the
// timeout, refusing or answering garbage, scheduled runs leave what BIRD
// holds unchanged (count never dips, contents equal), and status and
// metrics report the degradation.
func TestDaemonRegistryOutage(t *testing.T) {
	lab := "127.0.0.1:0"
	// Server A holds the Tencent AS45090 routes, the ByteDance routes and
	// the AS-SET; server B the other Tencent ASNs.
	onA := func(target string, o uint32, _ int) bool { return target == "bytedance" || o == 45090 }
	dataA := irrData(t, onA)
	dataB := irrData(t, func(target string, o uint32, i int) bool { return !onA(target, o, i) })
	a := startIRRd(t, lab, dataA)
	b := startIRRd(t, lab, dataB)
	l := newDaemonLab(t, "@every 2s", irrSources(a.Addr(), b.Addr()))
	l.start()
	first := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 })
	if first.Outcome != store.Applied || first.Degraded {
		t.Fatalf("first run: %+v", first)
	}
	want := l.applied()
	n := intentSize(want)
	if n < 100 {
		t.Fatalf("only %d prefixes resolved from the test registries", n)
	}
	l.holds(want)
	fromA := 0
	for _, tg := range want.Targets {
		for _, p := range tg.Prefixes {
			// Carried over when A fails: prefixes that only A attests (a
			// prefix with origins on both servers is still attested by B).
			if !slices.ContainsFunc(p.Evidence, func(e asn.Evidence) bool { return e.Source != "irr:"+a.Addr() }) {
				fromA++
			}
		}
	}
	watch := l.watchCount()
	srcA, srcB := "irr:"+a.Addr(), "irr:"+b.Addr()

	// carried: prefixes kept only because their source failed (-1: any).
	phases := []struct {
		name    string
		set     func()
		outcome string
		failed  []string
		carried int
	}{
		{"A stopped", func() { a.Close() }, store.Unchanged, []string{srcA}, fromA},
		{"A back but slower than the timeout", func() {
			a = startIRRd(t, a.Addr(), dataA)
			a.SetFaults(irrd.Faults{Delay: 5 * time.Second})
		}, store.Unchanged, []string{srcA}, fromA},
		{"A and B answer garbage: nothing usable", func() {
			a.SetFaults(irrd.Faults{Garbage: true})
			b.SetFaults(irrd.Faults{Garbage: true})
		}, store.Failed, []string{srcA, srcB}, 0},
		// Queries without data (an unknown AS-SET) still succeed: a partial
		// answer, every prefix of the set in force carried over.
		{"B refuses connections, A cut mid-answer", func() {
			a.SetFaults(irrd.Faults{CloseMidAnswer: true})
			b.SetFaults(irrd.Faults{Refuse: true})
		}, store.Unchanged, []string{srcA, srcB}, -1},
		{"both healthy", func() {
			a.SetFaults(irrd.Faults{})
			b.SetFaults(irrd.Faults{})
		}, store.Unchanged, nil, 0},
	}
	for _, ph := range phases {
		t0 := time.Now()
		ph.set()
		r := l.waitRun(ph.name, 60*time.Second, func(r *store.Run) bool {
			return r.Trigger == "schedule" && r.Start.After(t0)
		})
		var failed []string
		for _, s := range r.Sources {
			if !s.OK && !slices.Contains(failed, s.Source) {
				failed = append(failed, s.Source)
			}
		}
		slices.Sort(failed)
		wantFailed := slices.Clone(ph.failed)
		slices.Sort(wantFailed)
		if r.Outcome != ph.outcome || !slices.Equal(failed, wantFailed) {
			t.Fatalf("%s: run %d outcome %s, failed sources %v (want %s, %v): %s", ph.name, r.ID, r.Outcome, failed, ph.outcome, wantFailed, r.Error)
		}
		if ph.carried >= 0 && r.Carried.Prefixes != ph.carried {
			t.Errorf("%s: %d prefixes carried over, want %d", ph.name, r.Carried.Prefixes, ph.carried)
		} else if ph.carried < 0 && r.Carried.Prefixes == 0 {
			t.Errorf("%s: nothing carried over", ph.name)
		}
		// The peer holds exactly the set from before: count and contents.
		l.holds(want)
		st, err := l.client.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := l.metrics()
		degraded := len(ph.failed) > 0
		if st.Degraded != degraded || len(st.FailedSources) == 0 == degraded {
			t.Errorf("%s: status degraded %v, failed %+v", ph.name, st.Degraded, st.FailedSources)
		}
		wantDeg := "asfence_degraded 0"
		if degraded {
			wantDeg = "asfence_degraded 1"
		}
		if daemonMetric(m, "asfence_degraded ") != wantDeg {
			t.Errorf("%s: metrics say %q", ph.name, daemonMetric(m, "asfence_degraded "))
		}
		for _, src := range []string{srcA, srcB} {
			up := "1"
			if slices.Contains(ph.failed, src) {
				up = "0"
			}
			if line := daemonMetric(m, `asfence_source_up{source="`+src+`"}`); !strings.HasSuffix(line, " "+up) {
				t.Errorf("%s: %s", ph.name, line)
			}
		}
		if st.Applied == nil || st.Applied.RunID != 1 {
			t.Errorf("%s: the applied set changed: %+v", ph.name, st.Applied)
		}
	}
	m := l.metrics()
	for _, want := range []string{`asfence_runs_total{outcome="failed"}`, `asfence_source_errors_total{source="` + srcA + `"}`, `asfence_source_errors_total{source="` + srcB + `"}`} {
		if line := daemonMetric(m, want); line == "" || strings.HasSuffix(line, " 0") {
			t.Errorf("metric %s: %q", want, line)
		}
	}
	if low, samples := watch(); low < n || samples < 5 {
		t.Fatalf("BIRD's route count dipped to %d (set %d, %d samples)", low, n, samples)
	}
}
