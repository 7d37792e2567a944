package irrd

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn/irr"
)

// testSets adds sets (source TEST) to the real RPSL test data: nesting, a
// loop, an unknown member set and members from two sources.
const testSets = `as-set: AS-TOP
members: AS-MID, AS2561, AS-UNKNOWN
source: TEST

as-set: AS-MID
members: AS1849 AS-TOP
mp-members: AS12041
source: TEST

as-set: AS-MID
members: AS702
source: OTHER

route: 192.0.2.0/24
origin: AS2561
source: OTHER
`

func testIndex(t *testing.T) *irr.Index {
	t.Helper()
	x, err := irr.LoadFiles("../testdata/ripe-nonauth-route-sample.rpsl", "../testdata/ripe-nonauth-route6-sample.rpsl",
		"../testdata/ripe-as-set-tencent-bytedance-refs.rpsl", "../testdata/ripe-nonauth-aut-num-AS132203-AS45090.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.AddRPSL("test-sets", strings.NewReader(testSets)); err != nil {
		t.Fatal(err)
	}
	return x
}

func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", testIndex(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// session is a raw protocol conversation.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(q string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, q+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

// answer reads one answer and returns it whole ("A<n>\n<data>C\n" etc.),
// checking that an A answer's length is exact.
func (r *rawConn) answer() string {
	r.t.Helper()
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("reading answer: %v (got %q)", err, line)
	}
	if line[0] != 'A' {
		return line
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		r.t.Fatalf("bad length line %q", line)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r.br, data); err != nil {
		r.t.Fatal(err)
	}
	if data[n-1] != '\n' {
		r.t.Errorf("A answer does not end with a newline: %q", data)
	}
	end, err := r.br.ReadString('\n')
	if err != nil || end != "C\n" {
		r.t.Fatalf("after A: %q %v", end, err)
	}
	return line + string(data) + end
}

func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := r.br.ReadByte(); err != io.EOF {
		r.t.Fatalf("connection still open: %q %v", b, err)
	}
}

func data(s string) string { return "A" + strconv.Itoa(len(s)+1) + "\n" + s + "\nC\n" }

func TestProtocol(t *testing.T) {
	s := start(t, Options{})
	r := dial(t, s)
	r.send("!!")
	for _, tc := range []struct{ q, want string }{
		{"!nasfence-test", "C\n"},
		{"!s-lc", data("RIPE-NONAUTH,RIPE,TEST,OTHER")},
		{"!v", data("asfence-irrd -- IRRd 4 whois protocol subset")},
		{"!gAS1849", data("192.58.94.0/24 192.92.157.0/24 192.83.110.0/24 199.165.208.0/22 204.4.134.0/24 170.194.51.0/24 204.152.28.0/24 146.89.0.0/16")},
		{"!gas2561", ""}, // checked below: 16 prefixes + one from OTHER
		{"!6AS12041", ""},
		{"!gAS1", "D\n"},
		{"!gAS12041", "D\n"},
		{"!gfoo", "F Invalid AS number foo: must start with 'AS'\n"},
		{"!g", "F Missing parameter for g query\n"},
		{"!iAS-TENCENT", data("AS132203:AS-TENCENT")},
		{"!iAS-NOPE", "D\n"},
		{"!iAS-NOPE,1", "D\n"},
		{"!iAS-TOP", data("AS-MID AS-UNKNOWN AS2561")},
		{"!iAS-TOP,1", data("AS12041 AS1849 AS2561")},
		{"!iAS-TENCENT,1", "D\n"},
		{"!a", "F Missing required set name for A query\n"},
		{"!a4AS-NOPE", "D\n"},
		{"!t60", "C\n"},
		{"!t0", "F Invalid value for timeout: 0\n"},
		{"!x", "F Unrecognised command: x\n"},
		{"!", "F Missing IRRD command\n"},
		{"-s RIPE AS-TENCENT", "%% ERROR: only IRRd-style (!) queries are supported by this server\n"},
		{"!sRADB", "F One or more selected sources are unavailable.\n"},
		{"!sOTHER,test", "C\n"},
		{"!s-lc", data("OTHER,TEST")},
		{"!iAS-MID", data("AS702")},
		{"!iAS-TOP,1", data("AS2561 AS702")},
		{"!gAS2561", data("192.0.2.0/24")},
		{"!stest", "C\n"},
		{"!gAS2561", "D\n"},
	} {
		r.send(tc.q)
		got := r.answer()
		if strings.HasPrefix(tc.q, "-s") {
			r.answer() // RIPE style ends with blank lines
			r.answer()
		}
		switch tc.q {
		case "!gas2561":
			if n := len(strings.Fields(got)) - 2; n != 17 {
				t.Errorf("%s: %d prefixes, want 17 (16 RIPE-NONAUTH + 1 OTHER): %q", tc.q, n, got)
			}
			continue
		case "!6AS12041":
			if n := len(strings.Fields(got)) - 2; n != 28 || !strings.Contains(got, "2001:") {
				t.Errorf("%s: %d prefixes, want 28: %q", tc.q, n, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.q, got, tc.want)
		}
	}
	// !a over both families, de-duplicated.
	r.send("!sRIPE-NONAUTH,TEST")
	r.answer()
	r.send("!aAS-TOP")
	got := strings.Fields(r.answer())
	if n := len(got) - 2; n != 16+8+28 {
		t.Errorf("!aAS-TOP: %d prefixes, want %d", n, 16+8+28)
	}
	r.send("!q")
	r.expectClosed()
	if st := s.Stats(); st.Connections != 1 || st.Queries < 30 {
		t.Errorf("stats %+v", st)
	}
}

func TestPipelinedAnswersInOrder(t *testing.T) {
	s := start(t, Options{})
	r := dial(t, s)
	var b strings.Builder
	b.WriteString("!!\n")
	for range 200 {
		b.WriteString("!gAS702\n!iAS-NOPE\n!6AS12041\n")
	}
	if _, err := io.WriteString(r.c, b.String()); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if a := r.answer(); !strings.Contains(a, "203.195.128.0/17") {
			t.Fatalf("round %d: !gAS702 answered %q", i, a)
		}
		if a := r.answer(); a != "D\n" {
			t.Fatalf("round %d: !iAS-NOPE answered %q", i, a)
		}
		if a := r.answer(); !strings.HasPrefix(a, "A") || strings.Contains(a, ".0/") {
			t.Fatalf("round %d: !6AS12041 answered %q", i, a)
		}
	}
}

func TestSingleQueryMode(t *testing.T) {
	s := start(t, Options{})
	r := dial(t, s)
	r.send("!iAS-TENCENT")
	if a := r.answer(); a != data("AS132203:AS-TENCENT") {
		t.Errorf("answer %q", a)
	}
	r.expectClosed() // without !! the server answers one query, as IRRd does
}

func TestNoA(t *testing.T) {
	s := start(t, Options{NoA: true})
	r := dial(t, s)
	r.send("!!")
	r.send("!a")
	if a := r.answer(); a != "F Unrecognised command: a\n" {
		t.Errorf("!a: %q", a)
	}
	r.send("!iAS-TOP,1")
	if a := r.answer(); !strings.HasPrefix(a, "A") {
		t.Errorf("!i,1: %q", a)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := start(t, Options{IdleTimeout: 50 * time.Millisecond})
	r := dial(t, s)
	r.send("!!")
	r.expectClosed()
}

func TestFaults(t *testing.T) {
	s := start(t, Options{})

	s.SetFaults(Faults{Refuse: true})
	r := dial(t, s)
	r.expectClosed()

	s.SetFaults(Faults{Garbage: true})
	r = dial(t, s)
	r.send("!!")
	r.send("!nx")
	if line, _ := r.br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Errorf("garbage: %q", line)
	}

	s.SetFaults(Faults{CloseMidAnswer: true})
	r = dial(t, s)
	r.send("!!")
	r.send("!nx")
	if a := r.answer(); a != "C\n" {
		t.Errorf("status answers pass: %q", a)
	}
	r.send("!gAS2561")
	line, _ := r.br.ReadString('\n')
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	rest, err := io.ReadAll(r.br)
	if err != nil || len(rest) == 0 || len(rest) >= n {
		t.Errorf("cut answer: announced %d, got %d bytes (%v)", n, len(rest), err)
	}

	s.SetFaults(Faults{Delay: time.Hour})
	r = dial(t, s)
	r.send("!!")
	r.send("!nx")
	r.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := r.br.ReadByte(); err == nil {
		t.Error("delayed answer came at once")
	}
	// Close must not wait for the delay.
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a delayed answer")
	}
}

func TestDropConnections(t *testing.T) {
	s := start(t, Options{})
	r := dial(t, s)
	r.send("!!")
	r.send("!nx")
	r.answer()
	s.DropConnections()
	r.expectClosed()
	r = dial(t, s)
	r.send("!nx")
	if a := r.answer(); a != "C\n" {
		t.Errorf("after drop: %q", a)
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen("127.0.0.1:0", nil, Options{}); err == nil {
		t.Error("nil index accepted")
	}
	s := start(t, Options{})
	if _, err := Listen(s.Addr(), testIndex(t), Options{}); err == nil || !strings.Contains(err.Error(), "irrd:") {
		t.Errorf("second listener on %s: %v", s.Addr(), err)
	}
}
