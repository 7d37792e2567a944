package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/syncbuf"
	"github.com/asfence/asfence/prefixset"
)

func TestAnnounceUsage(t *testing.T) {
	t.Parallel()
	code, _, errb := runCLI(t, "announce", "--offline")
	if code != exitUsage || !strings.Contains(errb, "announce needs --config") {
		t.Errorf("without --config: exit %d, %q", code, errb)
	}
	cfg := filepath.Join(t.TempDir(), "asfence.yaml")
	if err := os.WriteFile(cfg, []byte("policy:\n  protect: [192.0.2.0/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errb = runCLI(t, "announce", "--offline", "--config", cfg)
	if code != exitUsage || !strings.Contains(errb, "no bgp: block") {
		t.Errorf("without bgp: block: exit %d, %q", code, errb)
	}
	bad := "bgp:\n  asn: 65001\n  router_id: 10.0.0.1\n  neighbors:\n    - address: 10.0.0.2\n      asn: 65002\n"
	if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errb = runCLI(t, "announce", "--offline", "--config", cfg)
	if code != exitUsage || !strings.Contains(errb, "bgp.neighbors[0].allow_ebgp") {
		t.Errorf("eBGP RTBH without allow_ebgp: exit %d, %q", code, errb)
	}
}

// TestAnnounceToBIRD runs `asfence announce --offline` against a real BIRD
// until interrupted: BIRD receives the embedded Intent, the log shows the
// peer's state and counts, and on SIGINT (the context) the command exits
// 0 and BIRD loses the routes (CEASE).
func TestAnnounceToBIRD(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	local := lab.Loopback(t)
	bird := lab.StartBIRD(t, lab.Config{ASN: 65001, Extra: lab.BIRDDiscardStatics,
		Sessions: []lab.Session{{Addr: local, ASN: 65001, Passive: true, Families: lab.AllFamilies}}})
	cfg := filepath.Join(t.TempDir(), "asfence.yaml")
	yaml := fmt.Sprintf(`log:
  level: info
  format: text
bgp:
  asn: 65001
  router_id: %s
  neighbors:
    - address: %s
      port: %d
      asn: 65001
      local_address: %s
      families: [ipv4, ipv6]
      announce: [blackhole, flowspec]
      connect_retry: 1
      description: lab-bird
`, local, bird.Addr(), bird.Port(), local)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := c.PolicyRules.Apply(asn.Select(s, c.TargetList))
	distinct := map[netip.Prefix]bool{} // a prefix of two targets is one route
	for _, p := range in.Exact("", prefixset.IPv4) {
		distinct[p] = true
	}
	want4 := len(distinct)
	if want4 == 0 {
		t.Fatal("embedded Intent is empty")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"announce", "--config", cfg, "--offline"}, &stdout, &stderr) }()

	lab.WaitEstablished(t, ctx, bird, local, 30*time.Second)
	lab.WaitCount(t, ctx, bird, lab.IPv4Unicast, want4, 30*time.Second)
	err = lab.Eventually(ctx, 10*time.Second, func(context.Context) error {
		if log := stderr.String(); !strings.Contains(log, "state=established") || !strings.Contains(log, fmt.Sprintf("sent_ipv4-unicast=%d", want4)) {
			return fmt.Errorf("log has no established peer with its counts:\n%s", log)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel() // what SIGINT does in main
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after interrupt; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("announce did not stop after the interrupt")
	}
	lab.WaitCount(t, context.Background(), bird, lab.IPv4Unicast, 0, 30*time.Second)
}

// TestHelperAnnounceProcess is not a test: TestAnnounceGracefulRestart
// runs the test binary as `asfence announce` in a child process through it.
func TestHelperAnnounceProcess(t *testing.T) {
	args := os.Getenv("ASFENCE_HELPER_ARGS")
	if args == "" {
		t.Skip("helper process for TestAnnounceGracefulRestart")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	code := run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// announceProcess starts `asfence announce args...` as a child process.
func announceProcess(t *testing.T, args ...string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAnnounceProcess$")
	cmd.Env = append(os.Environ(), "ASFENCE_HELPER_ARGS="+strings.Join(append([]string{"announce"}, args...), "\x1f"))
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out
}

// stopProcess sends SIGTERM and waits for exit status 0.
func stopProcess(t *testing.T, cmd *exec.Cmd, out *syncbuf.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("announce exited with %v:\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("announce did not exit on SIGTERM:\n%s", out.String())
	}
}

// TestAnnounceGracefulRestart: `announce --graceful` stopped by SIGTERM
// closes its session without a NOTIFICATION, so BIRD (a graceful-restart
// helper) keeps every route while asfence is away; when asfence is back
// the session re-forms and BIRD has withdrawn nothing at all.
func TestAnnounceGracefulRestart(t *testing.T) {
	lab.Short(t)
	t.Parallel()
	ctx := context.Background()
	local := lab.Loopback(t)
	bird := lab.StartBIRD(t, lab.Config{ASN: 65001, Extra: lab.BIRDDiscardStatics,
		Sessions: []lab.Session{{Addr: local, ASN: 65001, Passive: true, Families: []lab.Family{lab.IPv4Unicast}}}})
	cfg := filepath.Join(t.TempDir(), "asfence.yaml")
	yaml := fmt.Sprintf(`bgp:
  asn: 65001
  router_id: %s
  neighbors:
    - address: %s
      port: %d
      asn: 65001
      local_address: %s
      connect_retry: 1
`, local, bird.Addr(), bird.Port(), local)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out := announceProcess(t, "--config", cfg, "--offline", "--graceful")
	lab.WaitEstablished(t, ctx, bird, local, 30*time.Second)
	st, err := bird.ChannelStats(ctx, local, lab.IPv4Unicast)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		st, err = bird.ChannelStats(ctx, local, lab.IPv4Unicast)
		if err == nil && (st.Imported == 0 || st.Imported != n) {
			n, err = st.Imported, fmt.Errorf("bird holds %d routes, still changing", st.Imported)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	stopProcess(t, cmd, out)
	err = lab.Eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		si, err := bird.Session(ctx, local)
		if err == nil && si.Established {
			err = errors.New("session still established")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bird.Count(ctx, lab.IPv4Unicast); err != nil || c != n {
		t.Fatalf("while asfence is away BIRD holds %d routes (%v), want all %d", c, err, n)
	}
	cmd, out = announceProcess(t, "--config", cfg, "--offline")
	lab.WaitEstablished(t, ctx, bird, local, 30*time.Second)
	lab.WaitCount(t, ctx, bird, lab.IPv4Unicast, n, 30*time.Second)
	st2, err := bird.ChannelStats(ctx, local, lab.IPv4Unicast)
	if err != nil {
		t.Fatal(err)
	}
	if st2.ImportWithdraws != 0 || st2.Imported != n {
		t.Errorf("after the restart BIRD holds %d routes and received %d withdrawals; want %d and none", st2.Imported, st2.ImportWithdraws, n)
	}
	stopProcess(t, cmd, out)
	lab.WaitCount(t, ctx, bird, lab.IPv4Unicast, 0, 30*time.Second)
}
