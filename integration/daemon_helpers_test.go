package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// The daemon tests run the real asfence binary (`asfence run`) as a
// process, with a real BIRD as its iBGP peer, and read what BIRD holds.

// buildAsfence builds the asfence binary into a temp dir.
func buildAsfence(t testing.TB) string { return buildCmd(t, "asfence") }

// buildCmd builds ../cmd/<name> into a temp dir (removed at cleanup).
func buildCmd(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

// daemonProc is one asfence process.
type daemonProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startProc starts the binary; its stderr (the log) goes to logFile.
func startProc(t testing.TB, bin, logFile string, args ...string) *daemonProc {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, cmd: exec.Command(bin, args...), log: logFile, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("asfence log (tail):\n%s", b)
		}
	})
	return p
}

// exitCode waits for the process and returns its exit status (-1: killed
// by a signal).
func (p *daemonProc) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("asfence did not exit within %s", timeout)
	}
	var ee *exec.ExitError
	if p.err == nil {
		return 0
	}
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	p.t.Fatalf("asfence: %v", p.err)
	return -2
}

func (p *daemonProc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *daemonProc) signal(s os.Signal) { _ = p.cmd.Process.Signal(s) }

// daemonLab is a BIRD peer (and optionally an FRR one) and the config of
// an asfence daemon for them.
type daemonLab struct {
	t       *testing.T
	bin     string
	dir     string
	cfgPath string
	addr    netip.Addr // the daemon's address (BGP source, API)
	apiPort int
	bird    *lab.BIRD
	frr     *lab.FRR // nil unless daemonLabOptions.frr
	client  *api.Client
	proc    *daemonProc
	// wrap, if set, is a command that runs the binary (e.g. prlimit and
	// its options).
	wrap []string
}

// daemonLabOptions: frr adds an FRR iBGP peer next to BIRD; debug makes
// both peers log every route they receive or remove (lab.Config.Debug);
// peer, if set, changes a peer's config ("bird", "frr") before it starts.
type daemonLabOptions struct {
	frr, debug bool
	peer       func(name string, c *lab.Config)
}

// newDaemonLab starts BIRD (iBGP, graceful restart helper) and writes the
// daemon's config: BGP to BIRD, API on the daemon's address, the given
// schedule and extra YAML (sources, guard).
func newDaemonLab(t *testing.T, schedule, extra string) *daemonLab {
	return newDaemonLabWith(t, schedule, extra, daemonLabOptions{})
}

// newDaemonLabWith is newDaemonLab with options.
func newDaemonLabWith(t *testing.T, schedule, extra string, o daemonLabOptions) *daemonLab {
	t.Helper()
	lab.Short(t)
	lab.Require(t, "bird", "birdc")
	l := &daemonLab{t: t, bin: buildAsfence(t), dir: lab.Dir(t), addr: lab.Loopback(t)}
	l.apiPort = lab.FreePort(t, l.addr)
	session := []lab.Session{{
		Addr: l.addr, ASN: speakerASN, Passive: true, Description: "asfence",
		Families: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast},
	}}
	peerConfig := func(name string, c lab.Config) lab.Config {
		c.Sessions = slices.Clone(c.Sessions)
		if o.peer != nil {
			o.peer(name, &c)
		}
		return c
	}
	l.bird = lab.StartBIRD(t, peerConfig("bird", lab.Config{ASN: speakerASN, Extra: lab.BIRDDiscardStatics, Debug: o.debug, Sessions: session}))
	peers := []lab.Peer{l.bird}
	if o.frr {
		l.frr = lab.StartFRR(t, peerConfig("frr", lab.Config{ASN: speakerASN, Debug: o.debug, Sessions: session}))
		peers = append(peers, l.frr)
	}
	var neighbors strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&neighbors, `    - address: %s
      port: %d
      asn: %d
      local_address: %s
      families: [ipv4, ipv6]
      connect_retry: 1
      description: %s
`, p.Addr(), p.Port(), speakerASN, l.addr, p.Name())
	}
	l.cfgPath = filepath.Join(l.dir, "asfence.yaml")
	cfg := fmt.Sprintf(`schedule: %q
state_dir: %s
output_dir: %s
api:
  listen: %s:%d
log:
  format: json
bgp:
  asn: %d
  router_id: %s
  graceful_restart:
    enabled: true
    restart_time: 120
  neighbors:
%s%s`, schedule, filepath.Join(l.dir, "state"), filepath.Join(l.dir, "out"), l.addr, l.apiPort,
		speakerASN, l.addr, neighbors.String(), extra)
	if err := os.WriteFile(l.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l.client = &api.Client{Base: fmt.Sprintf("http://%s:%d", l.addr, l.apiPort), HTTP: nil}
	return l
}

// start runs `asfence run --config` with extra flags and waits for the API.
func (l *daemonLab) start(flags ...string) *daemonProc {
	l.t.Helper()
	bin, args := l.bin, append([]string{"run", "--config", l.cfgPath}, flags...)
	if len(l.wrap) > 0 {
		bin, args = l.wrap[0], append(append(slices.Clone(l.wrap[1:]), l.bin), args...)
	}
	l.proc = startProc(l.t, bin, filepath.Join(l.dir, "asfence.log"), args...)
	err := lab.Eventually(context.Background(), 60*time.Second, func(ctx context.Context) error {
		select {
		case <-l.proc.done:
			return nil // reported below
		default:
		}
		_, err := l.client.Status(ctx)
		return err
	})
	select {
	case <-l.proc.done:
		l.t.Fatalf("asfence exited at start: %v", l.proc.err)
	default:
	}
	if err != nil {
		l.t.Fatalf("daemon API: %v", err)
	}
	return l.proc
}

// waitRun polls the history until fn accepts a finished run.
func (l *daemonLab) waitRun(what string, timeout time.Duration, fn func(*store.Run) bool) *store.Run {
	l.t.Helper()
	var found *store.Run
	err := lab.Eventually(context.Background(), timeout, func(ctx context.Context) error {
		rs, err := l.client.Runs(ctx, store.ListOptions{Limit: 20})
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Outcome != store.Running && fn(r) {
				found = r
				return nil
			}
		}
		return fmt.Errorf("no %s run yet", what)
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return found
}

// applied reads the Intent in force from the API, as the peers should
// hold it.
func (l *daemonLab) applied() *policy.Intent {
	l.t.Helper()
	in, err := readIntent(func(path string, v any) error { return apiGet(l.client.Base+path, v) })
	if err != nil {
		l.t.Fatal(err)
	}
	return in
}

// readIntent reads the applied Intent through a daemon's API (get fetches
// a path's JSON).
func readIntent(get func(path string, v any) error) (*policy.Intent, error) {
	var ts struct {
		Targets []api.Target `json:"targets"`
	}
	if err := get("/api/v1/targets", &ts); err != nil {
		return nil, err
	}
	var in policy.Intent
	for _, tg := range ts.Targets {
		var p api.Prefixes
		if err := get("/api/v1/prefixes?target="+tg.Name, &p); err != nil {
			return nil, err
		}
		in.Targets = append(in.Targets, policy.TargetIntent{Name: tg.Name, ID: tg.ID, ASNs: tg.ASNs, Prefixes: p.Prefixes})
	}
	return &in, nil
}

// holds checks that BIRD (and FRR, if the lab has it) holds exactly the
// RTBH routes of in, with their attributes.
func (l *daemonLab) holds(in *policy.Intent) {
	l.t.Helper()
	want := expectRTBH(in)
	for _, p := range l.peers() {
		for _, f := range []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast} {
			checkHolds(l.t, context.Background(), p, f, want, true)
		}
	}
}

// peers are the lab's routing daemons.
func (l *daemonLab) peers() []lab.Peer {
	if l.frr != nil {
		return []lab.Peer{l.bird, l.frr}
	}
	return []lab.Peer{l.bird}
}

// birdCount is what BIRD holds in both unicast families.
func (l *daemonLab) birdCount(ctx context.Context) (int, error) {
	n4, err := l.bird.Count(ctx, lab.IPv4Unicast)
	if err != nil {
		return 0, err
	}
	n6, err := l.bird.Count(ctx, lab.IPv6Unicast)
	return n4 + n6, err
}

// watchCount samples BIRD's route count until stop is called and returns
// the lowest count seen (and how many samples).
func (l *daemonLab) watchCount() (stop func() (low, samples int)) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	low, samples := -1, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n, err := l.birdCount(ctx); err == nil {
				mu.Lock()
				if low < 0 || n < low {
					low = n
				}
				samples++
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	return func() (int, int) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return low, samples
	}
}

// metrics returns the daemon's /metrics text.
func (l *daemonLab) metrics() string {
	l.t.Helper()
	var buf bytes.Buffer
	if err := apiGetRaw(l.client.Base+"/metrics", &buf); err != nil {
		l.t.Fatal(err)
	}
	return buf.String()
}

// metricLine finds the sample line starting with prefix.
func daemonMetric(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func intentSize(in *policy.Intent) int {
	n := 0
	for _, t := range in.Targets {
		n += len(t.Prefixes)
	}
	return n
}

func apiGetRaw(url string, w io.Writer) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

func apiGet(url string, v any) error {
	var buf bytes.Buffer
	if err := apiGetRaw(url, &buf); err != nil {
		return err
	}
	return json.Unmarshal(buf.Bytes(), v)
}
