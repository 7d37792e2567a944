// Package lab starts real routing daemons (BIRD, FRR bgpd, gobgpd, ExaBGP,
// OpenBGPD) as BGP peers for tests, and reads back what each of them holds.
//
// Each daemon gets its own short temp dir (unix sockets are limited to 108
// bytes), its own address (a random 127.x.y.z in loopback mode, or a lab
// network namespace) and free ports, so tests in different packages can run
// in parallel. Everything started is stopped by t.Cleanup. On failure the
// tail of each daemon's log is printed.
//
// Loopback mode is the simple one for in-process speakers: all of
// 127.0.0.0/8 is on lo, so a Go test can dial a daemon on 127.x.y.z directly.
// Namespaces (NewNetns) are for daemon-to-daemon labs; a Go process must not
// setns itself (its goroutines move between OS threads).
//
// A policy test, for example:
//
//	lab.Short(t)
//	fa := lab.Loopback(t)
//	frr := lab.StartFRR(t, lab.Config{ASN: 65002, Extra: generatedPrefixListsAndRouteMaps,
//		Sessions: []lab.Session{{Addr: fa, ASN: 65001, Passive: true, Import: "ASFENCE-IN"}}})
//	feed := lab.NewFeeder(t, lab.Config{Addr: fa, ASN: 65001,
//		Sessions: []lab.Session{{Addr: frr.Addr(), Port: frr.Port(), ASN: 65002}}})
//	lab.WaitEstablished(t, ctx, frr, fa, 30*time.Second)
//	feed.Announce(ctx, lab.Route{Family: lab.IPv4Unicast, Prefix: p, ASPath: []uint32{396986}})
//	routes, err := frr.Routes(ctx, lab.IPv4Unicast) // what the filter let through
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Family is an address family / SAFI pair, named as gobgp names them.
type Family string

// Families.
const (
	IPv4Unicast  Family = "ipv4-unicast"
	IPv6Unicast  Family = "ipv6-unicast"
	IPv4FlowSpec Family = "ipv4-flowspec"
	IPv6FlowSpec Family = "ipv6-flowspec"
)

// AllFamilies are the four families asfence announces.
var AllFamilies = []Family{IPv4Unicast, IPv6Unicast, IPv4FlowSpec, IPv6FlowSpec}

// Unicast reports whether f is a unicast family.
func (f Family) Unicast() bool { return f == IPv4Unicast || f == IPv6Unicast }

// IPv6 reports whether f is an IPv6 family.
func (f Family) IPv6() bool { return f == IPv6Unicast || f == IPv6FlowSpec }

// Session is one BGP neighbor as a daemon is configured for it.
type Session struct {
	// Addr is the neighbor's address; Port the port to dial it on (0: 179).
	Addr netip.Addr
	Port int
	ASN  uint32
	// Passive: the daemon never dials, it waits for the neighbor.
	Passive bool
	// Families negotiated on the session (default: IPv4 and IPv6 unicast).
	Families []Family
	// Import is the daemon's own import policy: for BIRD the text after
	// "import" ("all", "filter NAME", "where ..."); for FRR a route-map
	// name. Empty: accept everything. Other daemons accept everything.
	Import string
	// Export likewise (default: nothing is exported).
	Export string
	// Description names the session in the daemon's config.
	Description string
	// Options are statements added to the session's protocol block
	// (BIRD only: e.g. "min hold time 30;").
	Options string
}

func (s Session) families() []Family {
	if len(s.Families) == 0 {
		return []Family{IPv4Unicast, IPv6Unicast}
	}
	return s.Families
}

func (s Session) port() int {
	if s.Port == 0 {
		return 179
	}
	return s.Port
}

// Config is what every daemon needs.
type Config struct {
	// Netns runs the daemon inside this network namespace ("" = the test's own).
	Netns string
	// Addr is the daemon's address: it listens there and sources its sessions
	// from it. Zero: a fresh loopback address (Loopback).
	Addr netip.Addr
	// Addr6 is its address for sessions with IPv6 neighbors (BIRD and FRR;
	// e.g. Netns.V6). Zero: Addr.
	Addr6 netip.Addr
	// Port is the BGP port it listens on. Zero: a free port on Addr.
	Port     int
	ASN      uint32
	RouterID netip.Addr // zero: Addr if IPv4, else derived
	Sessions []Session
	// Extra is raw configuration text in the daemon's own language, added
	// as described on each Start function (filters, prefix lists, statics).
	Extra string
	// Debug makes BIRD and FRR log every session state change and every
	// route they receive, replace or remove (BIRD: debug { states, routes,
	// events }; FRR: debug bgp updates in, graceful-restart and
	// neighbor-events), so a test can read from the daemon's own log what
	// it did with each route. Other daemons ignore it.
	Debug bool
	// BMP makes the daemon report its routes to BMP stations (RFC 7854):
	// FRR (its bmp module) and gobgpd. Other daemons ignore it.
	BMP []BMPStation
	// StartTimeout bounds the wait for BIRD to check its config and answer
	// (zero: 60 s): a BIRD holding a full table as static routes parses
	// for minutes on a loaded machine. Other daemons ignore it.
	StartTimeout time.Duration
}

// BMPStation is a BMP monitoring station a daemon connects to.
type BMPStation struct {
	Addr netip.AddrPort
	// Policy is what the daemon reports: "pre-policy" (the default),
	// "post-policy" or "both" (Adj-RIB-In before and after its import
	// policy); gobgpd also knows "local-rib" (RFC 9069) and "all".
	Policy string
	// Name is the router's sysName in the Initiation message (gobgpd; FRR
	// sends its hostname).
	Name string
}

func (b BMPStation) policy() string {
	if b.Policy == "" {
		return "pre-policy"
	}
	return b.Policy
}

// local is the daemon's address for a session with neighbor.
func (c *Config) local(neighbor netip.Addr) netip.Addr {
	if neighbor.Is6() && c.Addr6.IsValid() {
		return c.Addr6
	}
	return c.Addr
}

func (c *Config) fill(t testing.TB) {
	t.Helper()
	if !c.Addr.IsValid() {
		c.Addr = Loopback(t)
	}
	if c.Port == 0 {
		if c.Netns != "" {
			c.Port = 179
		} else {
			c.Port = FreePort(t, c.Addr)
		}
	}
	if !c.RouterID.IsValid() {
		if c.Addr.Is4() {
			c.RouterID = c.Addr
		} else {
			b := c.Addr.As16()
			c.RouterID = netip.AddrFrom4([4]byte{10, b[13], b[14], b[15]})
		}
	}
	if c.ASN == 0 {
		t.Fatal("lab: Config.ASN is required")
	}
}

// Peer is a running daemon.
type Peer interface {
	// Name is the implementation ("bird", "frr", "gobgpd", "exabgp", "openbgpd").
	Name() string
	// Addr and Port are where the daemon listens and sources sessions from.
	Addr() netip.Addr
	Port() int
	// Session reports the state of the session with neighbor.
	Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error)
	// Routes lists what the daemon holds from its neighbors in one family.
	Routes(ctx context.Context, f Family) ([]Route, error)
	// Count is a cheap count of Routes(f).
	Count(ctx context.Context, f Family) (int, error)
	// Stop stops the daemon (Cleanup does it too).
	Stop()
	// Log returns the daemon's log so far.
	Log() string
}

// SessionInfo is a session as the daemon sees it.
type SessionInfo struct {
	// State in the daemon's own words (e.g. "Established", "up").
	State       string
	Established bool
	// Since is when the session last changed state, to the precision the
	// daemon reports it (zero if it does not).
	Since time.Time
	// Ups counts how often the session came up, where the daemon reports
	// it (-1 otherwise). A session that never flapped has Ups == 1.
	Ups int
	// Precision of Since: daemons report it rounded, or recompute it from
	// a monotonic clock on every call.
	Precision time.Duration
}

// Unchanged reports whether b is the same established session as a (read
// earlier): no reset in between, as far as the daemon can tell. A reset
// takes at least a second (reconnect timers), more than any Precision.
func (a SessionInfo) Unchanged(b SessionInfo) bool {
	if !a.Established || !b.Established {
		return false
	}
	if a.Ups >= 0 && b.Ups >= 0 {
		return a.Ups == b.Ups
	}
	d := a.Since.Sub(b.Since)
	return d <= a.Precision && -d <= a.Precision
}

// Route is one route a daemon holds.
type Route struct {
	Family Family
	// Prefix of a unicast route.
	Prefix netip.Prefix
	// Flow of a FlowSpec rule.
	Flow    *Flow
	NextHop netip.Addr
	ASPath  []uint32
	// Communities as "A:B", large communities as "G:L1:L2", both sorted.
	Communities      []string
	LargeCommunities []string
	// Actions are the FlowSpec actions, normalised: "discard",
	// "rate-limit:N" (bytes/s), "dscp:N"; other extended communities as the
	// daemon prints them.
	Actions []string
}

// Flow is the match part of a FlowSpec rule. Other holds further
// components in the daemon's words.
type Flow struct {
	Dst, Src netip.Prefix
	Other    []string
}

func (f Flow) String() string {
	var parts []string
	if f.Dst.IsValid() {
		parts = append(parts, "dst "+f.Dst.String())
	}
	if f.Src.IsValid() {
		parts = append(parts, "src "+f.Src.String())
	}
	return strings.Join(append(parts, f.Other...), " ")
}

// Key identifies the route's NLRI: the prefix, or the flow's match.
func (r Route) Key() string {
	if r.Flow != nil {
		return string(r.Family) + " " + r.Flow.String()
	}
	return string(r.Family) + " " + r.Prefix.String()
}

// HasCommunity reports whether the route carries the community "A:B".
func (r Route) HasCommunity(c string) bool { return slices.Contains(r.Communities, c) }

// HasLargeCommunity reports whether the route carries "G:L1:L2".
func (r Route) HasLargeCommunity(c string) bool { return slices.Contains(r.LargeCommunities, c) }

// Short skips t in -short mode: lab tests start real daemons.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("lab: starts real routing daemons (skipped with -short)")
	}
}

// Require fails the test unless every binary is installed (make deps
// installs them).
func Require(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if filepath.IsAbs(b) {
			if _, err := os.Stat(b); err != nil {
				t.Fatalf("lab: %s is not installed (run make deps): %v", b, err)
			}
			continue
		}
		if _, err := exec.LookPath(b); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + b); err2 != nil {
				t.Fatalf("lab: %s is not installed (run make deps): %v", b, err)
			}
		}
	}
}

// Dir returns a new short temp dir (unix socket paths must fit 108 bytes,
// which t.TempDir under a long test name may not), removed at cleanup.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	// Daemons that drop privileges (FRR, OpenBGPD) must reach their files.
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Loopback returns a fresh random address in 127.0.0.0/8 (which is all on
// lo): tests in parallel processes practically never share one, so fixed
// ports on it do not collide either. 127.0.0.0/16 is left out.
func Loopback(t testing.TB) netip.Addr {
	t.Helper()
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatalf("lab: %v", err)
		}
		b[0] = 127
		if b[1] == 0 || b[3] == 0 || b[3] == 255 {
			continue
		}
		return netip.AddrFrom4(b)
	}
}

// FreePort returns a TCP port that is free on addr.
func FreePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("lab: free port on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RandomName returns prefix + 8 random hex digits (namespace names, files).
func RandomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%08x", prefix, binary.BigEndian.Uint32(b[:]))
}

// command builds a command run inside netns ("" = here).
func command(netns, name string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
}

// run runs a short command and returns its stdout, or an error with stderr.
func run(ctx context.Context, netns, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if netns != "" {
		args = append([]string{"netns", "exec", netns, name}, args...)
		name = "ip"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s%s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()), tail(out.String(), 500))
	}
	return out.Bytes(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// daemon is what every started routing daemon shares: its config and its
// process (Addr, Port, Stop and Log of the Peer interface).
type daemon struct {
	cfg  Config
	proc *process
}

// Addr implements Peer.
func (d *daemon) Addr() netip.Addr { return d.cfg.Addr }

// Port implements Peer.
func (d *daemon) Port() int { return d.cfg.Port }

// Stop implements Peer.
func (d *daemon) Stop() { d.proc.stop() }

// Log implements Peer.
func (d *daemon) Log() string { return d.proc.log() }

// startTimeout bounds a daemon's start-up: generous, because a loaded
// 2-core CI machine can take many seconds to start FRR or ExaBGP.
const startTimeout = 60 * time.Second

// waitReady polls probe (the daemon's own CLI answering, say) until it
// succeeds, failing the test if the daemon exits or the timeout passes.
func (d *daemon) waitReady(t testing.TB, name string, timeout time.Duration, probe func(ctx context.Context) error) {
	t.Helper()
	err := Eventually(context.Background(), timeout, func(ctx context.Context) error {
		if ok, err := d.proc.exited(); ok {
			return fmt.Errorf("%s exited: %v", name, err)
		}
		return probe(ctx)
	})
	if err != nil {
		t.Fatalf("lab: %s did not start: %v\n%s", name, err, d.Log())
	}
}

// process is a daemon started by the lab.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	once    sync.Once
	err     error
}

// start starts cmd with its output going to logPath, and registers its
// cleanup: stop, and on failure print the log tail.
func start(t testing.TB, name string, cmd *exec.Cmd, logPath string) *process {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("lab: %s: %v", name, err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group: a signal to the test does not hit the daemon first,
	// and Stop reaches helper children (ExaBGP's API process).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("lab: start %s: %v", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("lab: %s log (%s):\n%s", name, logPath, tail(p.log(), 4000))
		}
	})
	return p
}

func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// exited reports whether the process has ended, with its error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *process) stop() {
	p.once.Do(func() {
		if ok, _ := p.exited(); ok {
			return
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
			ForgetFRRTmp(pgid)
		}
	})
}

// Eventually polls cond every interval until it returns nil or the
// deadline passes; it returns the last error.
func Eventually(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 20 * time.Millisecond
	var last error
	for {
		if last = cond(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, last)
		case <-time.After(interval):
		}
		if interval < 250*time.Millisecond {
			interval *= 2
		}
	}
}

// WaitEstablished waits until peer reports the session with neighbor
// Established, or fails the test after timeout.
func WaitEstablished(t testing.TB, ctx context.Context, p Peer, neighbor netip.Addr, timeout time.Duration) SessionInfo {
	t.Helper()
	var si SessionInfo
	err := Eventually(ctx, timeout, func(ctx context.Context) error {
		var err error
		si, err = p.Session(ctx, neighbor)
		if err != nil {
			return err
		}
		if !si.Established {
			return fmt.Errorf("%s: session with %s is %s", p.Name(), neighbor, si.State)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	return si
}

// WaitCount waits until peer holds want routes of family f.
func WaitCount(t testing.TB, ctx context.Context, p Peer, f Family, want int, timeout time.Duration) {
	t.Helper()
	err := Eventually(ctx, timeout, func(ctx context.Context) error {
		n, err := p.Count(ctx, f)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%s holds %d %s routes, want %d", p.Name(), n, f, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
}

// RoutesByKey indexes routes by Key; duplicates are an error (a daemon
// should hold one best route per NLRI from a single neighbor).
func RoutesByKey(rs []Route) (map[string]Route, error) {
	m := make(map[string]Route, len(rs))
	for _, r := range rs {
		if _, dup := m[r.Key()]; dup {
			return m, fmt.Errorf("route %s held twice", r.Key())
		}
		m[r.Key()] = r
	}
	return m, nil
}

func sortedUnique(ss []string) []string {
	slices.Sort(ss)
	return slices.Compact(ss)
}

func atoi(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return n, nil
}

var errNoSession = errors.New("no such session")

// Parallel marks t parallel, except under the race detector: GoBGP keeps
// its route-selection options in process-wide variables that every
// server's StartBgp writes, so GoBGP servers (Feeder, the speaker under
// test) started by parallel tests race inside GoBGP. Sequential tests do
// not.
func Parallel(t *testing.T) {
	if !raceDetector {
		t.Parallel()
	}
}
