package irr_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
)

var realFiles = []string{
	"testdata/ripe-nonauth-route-sample.rpsl",
	"testdata/ripe-nonauth-route6-sample.rpsl",
	"testdata/ripe-as-set-tencent-bytedance-refs.rpsl",
	"testdata/ripe-nonauth-aut-num-AS132203-AS45090.rpsl",
}

// testSets nests sets over the real route data's origins (source TEST):
// a loop (AS-TOP <-> AS-MID), an unknown member set, private and
// documentation ASNs (skipped), a hierarchical name and a junk member.
const testSets = `as-set: AS-TOP
members: AS-MID, AS2561, AS-UNKNOWN, AS65001
source: TEST

as-set: AS-MID
members: AS1849 AS-TOP AS64496, AS23456
mp-members: AS12041, AS702:AS-DEEP, ANY
source: TEST

as-set: AS702:AS-DEEP
members: AS702
source: TEST

as-set: AS-CHAIN1
members: AS-CHAIN2
source: TEST

as-set: AS-CHAIN2
members: AS-CHAIN3
source: TEST

as-set: AS-CHAIN3
members: AS-CHAIN4
source: TEST

as-set: AS-CHAIN4
members: AS3689
source: TEST
`

func loadIndex(t *testing.T, extra string) *irr.Index {
	t.Helper()
	x, err := irr.LoadFiles(realFiles...)
	if err != nil {
		t.Fatal(err)
	}
	if extra != "" {
		if err := x.AddRPSL("test-sets", strings.NewReader(extra)); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func startServer(t *testing.T, o irrd.Options) *irrd.Server {
	t.Helper()
	s, err := irrd.Listen("127.0.0.1:0", loadIndex(t, testSets), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t *testing.T, cfg irr.Config) *irr.Client {
	t.Helper()
	c, err := irr.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func asnsOf(facts []asn.ASNFact) []uint32 {
	var out []uint32
	for _, f := range facts {
		out = append(out, f.ASN)
	}
	slices.Sort(out)
	return out
}

func prefixesOf(facts []asn.PrefixFact, v6 bool) []string {
	var out []string
	for _, f := range facts {
		if f.Prefix.Addr().Is6() == v6 {
			out = append(out, f.Prefix.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestDiscover(t *testing.T) {
	s := startServer(t, irrd.Options{})
	c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"ripe-nonauth", "RIPE", "TEST"}})
	if c.Name() != "irr:"+s.Addr() {
		t.Errorf("name %q", c.Name())
	}
	tg := &asn.Target{Name: "t", ASSets: []string{"AS-TOP", "AS-TENCENT"}}
	facts, err := c.Discover(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := asnsOf(facts); !slices.Equal(got, []uint32{702, 1849, 2561, 12041}) {
		t.Fatalf("ASNs %v", got)
	}
	details := map[uint32]string{}
	for _, f := range facts {
		details[f.ASN] = f.Evidence.Detail
		if f.Evidence.Source != c.Name() || f.Evidence.Seen.IsZero() {
			t.Errorf("evidence %+v", f.Evidence)
		}
	}
	for a, want := range map[uint32]string{
		2561:  "member of AS-TOP (queried RIPE-NONAUTH,RIPE,TEST)",
		1849:  "member of AS-TOP > AS-MID (queried RIPE-NONAUTH,RIPE,TEST)",
		702:   "member of AS-TOP > AS-MID > AS702:AS-DEEP (queried RIPE-NONAUTH,RIPE,TEST)",
		12041: "member of AS-TOP > AS-MID (queried RIPE-NONAUTH,RIPE,TEST)",
	} {
		if details[a] != want {
			t.Errorf("AS%d: detail %q, want %q", a, details[a], want)
		}
	}

	// Server-side recursion finds the same members.
	c2 := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE-NONAUTH", "RIPE", "TEST"}, ServerSideRecursion: true})
	facts2, err := c2.Discover(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := asnsOf(facts2); !slices.Equal(got, asnsOf(facts)) {
		t.Errorf("server-side recursion: %v", got)
	}
	if !strings.Contains(facts2[0].Evidence.Detail, "expanded by the server") {
		t.Errorf("detail %q", facts2[0].Evidence.Detail)
	}
}

func TestDiscoverTencentUnknownSet(t *testing.T) {
	s := startServer(t, irrd.Options{})
	c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE"}})
	tg, ok := asn.BuiltinTarget("tencent")
	if !ok {
		t.Fatal("no built-in tencent target")
	}
	// AS-TENCENT's only member AS132203:AS-TENCENT is not in the RIPE
	// dump: an empty answer, not an error.
	facts, err := c.Discover(context.Background(), &tg)
	if err != nil || len(facts) != 0 {
		t.Fatalf("facts %v, err %v", facts, err)
	}
	if st := s.Stats(); st.Queries < 4 {
		t.Errorf("the sets were not queried: %+v", st)
	}
}

func TestDepthLimit(t *testing.T) {
	s := startServer(t, irrd.Options{})
	tg := &asn.Target{Name: "t", ASSets: []string{"AS-CHAIN1"}}
	c := newClient(t, irr.Config{Address: s.Addr(), MaxDepth: 3})
	_, err := c.Discover(context.Background(), tg)
	if err == nil || !strings.Contains(err.Error(), "depth limit 3 (at AS-CHAIN1 > AS-CHAIN2 > AS-CHAIN3 > AS-CHAIN4)") || !strings.Contains(err.Error(), s.Addr()) {
		t.Fatalf("error %v", err)
	}
	c = newClient(t, irr.Config{Address: s.Addr(), MaxDepth: 4})
	facts, err := c.Discover(context.Background(), tg)
	if err != nil || !slices.Equal(asnsOf(facts), []uint32{3689}) {
		t.Fatalf("depth 4: %v %v", asnsOf(facts), err)
	}
}

func TestResolve(t *testing.T) {
	s := startServer(t, irrd.Options{})
	x := loadIndex(t, "")
	c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE-NONAUTH"}})
	asns := []uint32{2561, 1849, 12041, 1, 45090}
	facts, err := c.Resolve(context.Background(), &asn.Target{Name: "t"}, asns)
	if err != nil {
		t.Fatal(err)
	}
	var want4, want6 []string
	for _, a := range asns {
		for _, r := range x.Routes(a, false, nil) {
			want4 = append(want4, r.Prefix.String())
		}
		for _, r := range x.Routes(a, true, nil) {
			want6 = append(want6, r.Prefix.String())
		}
	}
	slices.Sort(want4)
	slices.Sort(want6)
	if got := prefixesOf(facts.Prefixes, false); !slices.Equal(got, want4) || len(got) != 24 {
		t.Errorf("IPv4: %d %v, want %d", len(got), got, len(want4))
	}
	if got := prefixesOf(facts.Prefixes, true); !slices.Equal(got, want6) || len(got) != 28 {
		t.Errorf("IPv6: %d, want %d", len(got), len(want6))
	}
	for _, f := range facts.Prefixes {
		want := "route object, origin AS2561 (queried RIPE-NONAUTH)"
		if f.Origin == 12041 {
			want = "route6 object, origin AS12041 (queried RIPE-NONAUTH)"
		}
		if f.Origin == 1849 {
			want = "route object, origin AS1849 (queried RIPE-NONAUTH)"
		}
		if f.Evidence.Detail != want || f.Evidence.Source != c.Name() {
			t.Fatalf("%s origin %d: evidence %+v", f.Prefix, f.Origin, f.Evidence)
		}
		if !slices.ContainsFunc(x.Routes(f.Origin, f.Prefix.Addr().Is6(), nil), func(r irr.Route) bool { return r.Prefix == f.Prefix }) {
			t.Errorf("%s is not a route object of AS%d", f.Prefix, f.Origin)
		}
	}

	// !s restricts the answer: the routes are RIPE-NONAUTH objects only.
	c2 := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE"}})
	facts, err = c2.Resolve(context.Background(), &asn.Target{Name: "t"}, asns)
	if err != nil || len(facts.Prefixes) != 0 {
		t.Errorf("sources RIPE: %d prefixes, %v", len(facts.Prefixes), err)
	}
}

func TestOnePersistentConnection(t *testing.T) {
	s := startServer(t, irrd.Options{})
	c := newClient(t, irr.Config{Address: s.Addr()})
	tg := &asn.Target{Name: "t", ASSets: []string{"AS-TOP"}}
	ctx := context.Background()
	for range 3 {
		facts, err := c.Discover(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Resolve(ctx, tg, asnsOf(facts)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Connections != 1 {
		t.Errorf("%d connections, want 1 persistent one", st.Connections)
	}

	// The server drops the idle connection: the next call reconnects once.
	s.DropConnections()
	facts, err := c.Resolve(ctx, tg, []uint32{2561})
	if err != nil || len(facts.Prefixes) != 16 {
		t.Fatalf("after the server dropped the connection: %d prefixes, %v", len(facts.Prefixes), err)
	}
	if st := s.Stats(); st.Connections != 2 {
		t.Errorf("%d connections, want 2", st.Connections)
	}
}

func TestBadSources(t *testing.T) {
	s := startServer(t, irrd.Options{})
	c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RADB"}})
	_, err := c.Resolve(context.Background(), &asn.Target{Name: "t"}, []uint32{2561})
	if err == nil || !strings.Contains(err.Error(), "irr "+s.Addr()+": !sRADB: server rejected the sources: F One or more selected sources are unavailable.") {
		t.Fatalf("error %v", err)
	}
	if _, err := irr.New(irr.Config{Address: s.Addr(), Sources: []string{"RIPE,RADB"}}); err == nil {
		t.Error("source name with a comma accepted")
	}
	if _, err := irr.New(irr.Config{}); err == nil {
		t.Error("empty address accepted")
	}
}

func TestDefaultPort(t *testing.T) {
	c, err := irr.New(irr.Config{Address: "whois.example.net"})
	if err != nil || c.Name() != "irr:whois.example.net:43" {
		t.Errorf("%v %v", c.Name(), err)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestFailures: every failure mode is an error naming the server and the
// query, becomes the server's own Incomplete entry, and leaves nothing of
// that server in the snapshot, while a healthy server's answers still count.
func TestFailures(t *testing.T) {
	tg := asn.Target{Name: "t", ASSets: []string{"AS-TOP"}}
	for _, tc := range []struct {
		name    string
		faults  irrd.Faults
		timeout time.Duration
		want    []string
	}{
		{"connection refused", irrd.Faults{}, 0, []string{"connect:", "connection refused"}},
		{"refused after accept", irrd.Faults{Refuse: true}, 0, []string{"!nasfence:"}},
		{"slower than the timeout", irrd.Faults{Delay: time.Hour}, 200 * time.Millisecond, []string{"!nasfence: no answer within 200ms (timeout)"}},
		{"garbage", irrd.Faults{Garbage: true}, 0, []string{"!nasfence: not an IRRd answer: \"HTTP/1.1 400 Bad Request\""}},
		{"closed mid-answer", irrd.Faults{CloseMidAnswer: true}, 0, []string{"!iAS-TOP: connection closed mid-answer"}},
		{"closed mid-resolve", irrd.Faults{CloseMidAnswer: true, CloseAfter: 4}, 0, []string{"!gAS", "connection closed mid-answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := startServer(t, irrd.Options{})
			var addr string
			if tc.name == "connection refused" {
				addr = closedPort(t)
			} else {
				bad := startServer(t, irrd.Options{})
				bad.SetFaults(tc.faults)
				addr = bad.Addr()
			}
			badc := newClient(t, irr.Config{Address: addr, Sources: []string{"RIPE-NONAUTH", "TEST"}, Timeout: tc.timeout})
			goodc := newClient(t, irr.Config{Address: good.Addr(), Sources: []string{"RIPE-NONAUTH", "TEST"}})
			eng := &asn.Engine{Sources: []asn.Source{badc, goodc}, Timeout: 20 * time.Second}
			snap, err := eng.Run(context.Background(), []asn.Target{tg})
			if err != nil {
				t.Fatalf("engine: %v", err)
			}
			if len(snap.Incomplete) == 0 {
				t.Fatal("no incomplete entry")
			}
			matched := false
			for _, in := range snap.Incomplete {
				t.Logf("incomplete: %s", in.Error)
				if in.Source != "irr:"+addr || in.Target != "t" {
					t.Errorf("incomplete %+v", in)
				}
				if !strings.Contains(in.Error, "irr "+addr+": ") {
					t.Errorf("error does not name the server: %q", in.Error)
				}
				all := true
				for _, w := range tc.want {
					all = all && strings.Contains(in.Error, w)
				}
				matched = matched || all
			}
			if !matched {
				t.Errorf("no error with %q in %+v", tc.want, snap.Incomplete)
			}
			res := snap.Target("t")
			if res == nil || len(res.ASNs) != 4 || len(res.Prefixes) != 16+8+3+28 {
				t.Fatalf("healthy server's result missing: %+v", res)
			}
			for _, p := range res.Prefixes {
				for _, e := range p.Evidence {
					if e.Source != goodc.Name() {
						t.Errorf("%s: evidence from %s", p.Prefix, e.Source)
					}
				}
			}
			for _, a := range res.ASNs {
				for _, e := range a.Evidence {
					// Cut while resolving: the AS-SET answers were whole
					// and count; the prefixes must not.
					if e.Source != goodc.Name() && tc.name != "closed mid-resolve" {
						t.Errorf("AS%d: evidence from %s", a.ASN, e.Source)
					}
				}
			}
		})
	}
}

// TestPartialAnswerDiscarded: an answer cut after some complete ones gives
// an error and no facts at all, not the prefixes read so far.
func TestPartialAnswerDiscarded(t *testing.T) {
	s := startServer(t, irrd.Options{})
	c := newClient(t, irr.Config{Address: s.Addr()})
	ctx := context.Background()
	if _, err := c.Resolve(ctx, nil, []uint32{2561}); err != nil {
		t.Fatal(err)
	}
	s.SetFaults(irrd.Faults{CloseMidAnswer: true, CloseAfter: 2})
	facts, err := c.Resolve(ctx, nil, []uint32{2561, 1849, 12041, 702})
	if err == nil || !strings.Contains(err.Error(), "closed mid-answer") || len(facts.Prefixes) != 0 || len(facts.ASNs) != 0 {
		t.Fatalf("facts %d, err %v", len(facts.Prefixes), err)
	}
	// The connection is not reused after an error; a healthy server works again.
	s.SetFaults(irrd.Faults{})
	facts, err = c.Resolve(ctx, nil, []uint32{2561})
	if err != nil || len(facts.Prefixes) != 16 {
		t.Fatalf("after recovery: %d %v", len(facts.Prefixes), err)
	}
}

func TestContextCancel(t *testing.T) {
	s := startServer(t, irrd.Options{})
	s.SetFaults(irrd.Faults{Delay: time.Hour})
	c := newClient(t, irr.Config{Address: s.Addr(), Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Discover(ctx, &asn.Target{Name: "t", ASSets: []string{"AS-TOP"}})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s.Addr()) {
		t.Fatalf("error %v", err)
	}
}

func TestPrefixFamilyMismatchIsAnError(t *testing.T) {
	// A server that puts an IPv6 prefix in a !g answer is not trusted:
	// route6 objects served as route (a wrong index) must not slip through.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			switch q := sc.Text(); {
			case q == "!!":
			case strings.HasPrefix(q, "!n"):
				c.Write([]byte("C\n"))
			case q == "!gAS1":
				c.Write([]byte("A14\n2001:db8::/32\nC\n"))
			default:
				c.Write([]byte("D\n"))
			}
		}
	}()
	cl := newClient(t, irr.Config{Address: ln.Addr().String()})
	_, err = cl.Resolve(context.Background(), nil, []uint32{1})
	if err == nil || !strings.Contains(err.Error(), "!gAS1: 2001:db8::/32 in a route answer") {
		t.Fatalf("error %v", err)
	}
}
