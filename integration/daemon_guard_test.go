package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// cli runs an asfence client command against the lab's daemon.
func (l *daemonLab) cli(args ...string) (string, error) {
	out, err := exec.Command(l.bin, append(args, "--config", l.cfgPath)...).CombinedOutput()
	return string(out), err
}

// triggerRun starts a run through the API and waits for it.
func (l *daemonLab) triggerRun() *store.Run {
	l.t.Helper()
	r, err := l.client.Trigger(context.Background(), "test")
	if err != nil {
		l.t.Fatal(err)
	}
	return l.waitRun(fmt.Sprintf("run %d", r.ID), 60*time.Second, func(x *store.Run) bool { return x.ID == r.ID })
}

// TestDaemonGuardHoldApproveReject: a registry answer that drops half of a
// target is held and BIRD keeps the old set; rejecting keeps it; approving
// applies exactly the held set as a delta (no session reset).
func TestDaemonGuardHoldApproveReject(t *testing.T) {
	all := func(string, uint32, int) bool { return true }
	half := func(target string, _ uint32, i int) bool { return target != "tencent" || i%2 == 0 }
	srv := startIRRd(t, "127.0.0.1:0", irrData(t, all))
	l := newDaemonLab(t, "@every 1h", irrSources(srv.Addr()))
	l.start()
	first := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 })
	if first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	old := l.applied()
	if intentSize(old) == 0 {
		t.Fatal("the API shows no applied set after the first applied run")
	}
	l.holds(old)
	ctx := context.Background()
	sess, err := l.bird.Session(ctx, l.addr)
	if err != nil || !sess.Established {
		t.Fatalf("session: %+v %v", sess, err)
	}
	// The daemon's view of the peer: metrics and `asfence peers`.
	v4, v6 := 0, 0
	for _, tg := range old.Targets {
		for _, p := range tg.Prefixes {
			if p.Prefix.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	peer := l.bird.Addr().String()
	m := l.metrics()
	for metric, want := range map[string]string{
		`asfence_bgp_peer_established{description="bird",peer="` + peer + `",state="established"}`: "1",
		`asfence_bgp_peer_prefixes_sent{family="ipv4-unicast",peer="` + peer + `"}`:                fmt.Sprint(v4),
		`asfence_bgp_peer_prefixes_sent{family="ipv6-unicast",peer="` + peer + `"}`:                fmt.Sprint(v6),
	} {
		if line := daemonMetric(m, metric); line != metric+" "+want {
			t.Errorf("metric %s: got %q, want %s", metric, line, want)
		}
	}
	if out, err := l.cli("peers"); err != nil || !strings.Contains(out, peer) || !strings.Contains(out, "established") ||
		!strings.Contains(out, fmt.Sprintf("ipv4-unicast=%d", v4)) {
		t.Fatalf("asfence peers: %v\n%s", err, out)
	}

	// The registry now answers with half of Tencent.
	srv.Close()
	srv = startIRRd(t, srv.Addr(), irrData(t, half))
	held := l.triggerRun()
	if held.Outcome != store.Held || len(held.Guard) == 0 || !strings.Contains(held.Guard[0], "tencent: would withdraw") {
		t.Fatalf("run %d: %+v", held.ID, held)
	}
	l.holds(old)
	out, err := l.cli("show", fmt.Sprint(held.ID))
	if err != nil || !strings.Contains(out, "held      tencent: would withdraw") || !strings.Contains(out, "WAITING FOR APPROVAL") {
		t.Fatalf("asfence show: %v\n%s", err, out)
	}
	removed := 0
	for _, tg := range held.Diff.Targets {
		if tg.Target == "tencent" {
			removed = tg.Removed
		}
	}
	if removed == 0 || !strings.Contains(out, "\n  - ") {
		t.Fatalf("held diff: %d removed\n%s", removed, out)
	}

	// Reject: the old set stays.
	if out, err := l.cli("reject", fmt.Sprint(held.ID)); err != nil || !strings.Contains(out, "rejected") {
		t.Fatalf("asfence reject: %v\n%s", err, out)
	}
	l.holds(old)

	// The next run is held again; approve it.
	again := l.triggerRun()
	if again.Outcome != store.Held {
		t.Fatalf("run %d: %+v", again.ID, again)
	}
	l.holds(old)
	if out, err := l.cli("approve", fmt.Sprint(again.ID)); err != nil || !strings.Contains(out, "approved and applied") {
		t.Fatalf("asfence approve: %v\n%s", err, out)
	}
	// BIRD holds exactly the held set: the old one minus what the diff
	// removed.
	_, detail, err := l.client.Run(ctx, again.ID)
	if err != nil || detail == nil {
		t.Fatal(err)
	}
	gone := map[netip.Prefix]bool{}
	for _, tc := range detail.Change.Targets {
		for _, p := range tc.Removed {
			gone[p.Prefix] = true
		}
		if len(tc.Added) > 0 {
			t.Fatalf("held diff adds %d prefixes to %s", len(tc.Added), tc.Target)
		}
	}
	if len(gone) != removed {
		t.Fatalf("approved diff removes %d, held diff said %d", len(gone), removed)
	}
	want := &policy.Intent{}
	for _, tg := range old.Targets {
		nt := tg
		nt.Prefixes = nil
		for _, p := range tg.Prefixes {
			if !gone[p.Prefix] {
				nt.Prefixes = append(nt.Prefixes, p)
			}
		}
		want.Targets = append(want.Targets, nt)
	}
	l.holds(want)
	if got := intentSize(l.applied()); got != intentSize(want) {
		t.Fatalf("applied set has %d prefixes, want %d", got, intentSize(want))
	}
	// A delta: the session was not reset, and the speaker only withdrew.
	sess2, err := l.bird.Session(ctx, l.addr)
	if err != nil || !sess.Unchanged(sess2) {
		t.Fatalf("session reset by the approval: %+v -> %+v (%v)", sess, sess2, err)
	}
	r, _, err := l.client.Run(ctx, again.ID)
	if err != nil || r.BGP == nil || r.BGP.Withdrawn != removed || r.BGP.Added != 0 || r.Decision == nil || r.Decision.Action != store.Approved {
		t.Fatalf("approved run: bgp %+v decision %+v (%v)", r.BGP, r.Decision, err)
	}
	if v4, v6 := r.BGP.ByFamily["ipv4-unicast"], r.BGP.ByFamily["ipv6-unicast"]; v4.Withdrawn+v6.Withdrawn != removed {
		t.Fatalf("approved run: per-family withdrawals %+v, want %d in all", r.BGP.ByFamily, removed)
	}
	// History answers what was blocked when and why.
	out, err = l.cli("history")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"held", "rejected by", "approved by", "would withdraw"} {
		if !strings.Contains(out, w) {
			t.Errorf("history lacks %q:\n%s", w, out)
		}
	}
	// The registry recovers: adding the half back is beyond the add ratio,
	// so it is held too; approved through the API, BIRD holds the old set.
	srv.Close()
	startIRRd(t, srv.Addr(), irrData(t, all)) // closed when the test ends
	back := l.triggerRun()
	if back.Outcome != store.Held || !strings.Contains(strings.Join(back.Guard, ";"), "tencent: would add") {
		t.Fatalf("recovery run: %+v", back)
	}
	l.holds(want)
	if _, err := l.client.Approve(ctx, back.ID, "test"); err != nil {
		t.Fatal(err)
	}
	l.holds(old)
}
