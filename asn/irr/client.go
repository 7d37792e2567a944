package irr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/rpsl"
)

// DefaultTimeout bounds each wait for the server when none is configured.
const DefaultTimeout = 30 * time.Second

// Config describes one IRRd whois server.
type Config struct {
	// Address is host:port; port 43 when omitted.
	Address string
	// Sources restricts the databases queried (!s), in priority order;
	// empty means the server's default sources.
	Sources []string
	// Timeout bounds connecting and each wait for an answer (the server
	// must make progress within it); 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxDepth limits AS-SET nesting; 0 means DefaultMaxDepth.
	MaxDepth int
	// ServerSideRecursion expands AS-SETs with one !iSET,1 query per set
	// instead of level by level (which records the path as evidence).
	ServerSideRecursion bool
	// Agent identifies the client (!n); default "asfence".
	Agent string
}

// Client queries one IRRd server over one persistent (!!), pipelined
// connection. It implements asn.Discoverer (AS-SET members) and
// asn.Resolver (route/route6 prefixes by origin). Calls are serialised;
// the connection is reused across calls and re-established once if the
// server dropped it.
//
// IRRd 4's !a (all prefixes of an AS-SET in one answer) is not used: its
// answer does not say which ASN originates which prefix, and the resolver
// needs the origin to honour exclusions and to give per-prefix evidence;
// with origins dropped it would not give the same answer as !g/!6 per ASN.
type Client struct {
	cfg  Config
	addr string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	conn *conn
}

// New checks the configuration and returns a client; it does not connect.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("irr: no server address")
	}
	addr := cfg.Address
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "43")
	}
	srcs := make([]string, len(cfg.Sources))
	for i, s := range cfg.Sources {
		srcs[i] = strings.ToUpper(strings.TrimSpace(s))
		if srcs[i] == "" || strings.ContainsAny(srcs[i], " ,!\r\n") {
			return nil, fmt.Errorf("irr %s: invalid source name %q", addr, s)
		}
	}
	cfg.Sources = srcs
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.Agent == "" {
		cfg.Agent = "asfence"
	}
	d := &net.Dialer{Timeout: cfg.Timeout}
	return &Client{cfg: cfg, addr: addr, dial: d.DialContext}, nil
}

// Name implements asn.Source: "irr:<host:port>".
func (c *Client) Name() string { return "irr:" + c.addr }

// Close closes the connection, if one is open.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.nc.Close()
		c.conn = nil
		return err
	}
	return nil
}

func (c *Client) queried() string {
	if len(c.cfg.Sources) == 0 {
		return "server's default sources"
	}
	return "queried " + strings.Join(c.cfg.Sources, ",")
}

// Discover expands the target's AS-SETs into member ASNs. An unknown set
// is empty, not an error; private, reserved and documentation ASNs are
// skipped (and logged).
func (c *Client) Discover(ctx context.Context, t *asn.Target) ([]asn.ASNFact, error) {
	if len(t.ASSets) == 0 {
		return nil, nil
	}
	seen := time.Now().UTC().Truncate(time.Second)
	var ex *expansion
	var err error
	if c.cfg.ServerSideRecursion {
		ex, err = c.expandOnServer(ctx, t.ASSets)
	} else {
		ex, err = expandSets(ctx, t.ASSets, c.cfg.MaxDepth, c.lookupSets)
	}
	if err != nil {
		return nil, fmt.Errorf("irr %s: %w", c.addr, err)
	}
	logExpansion(c.Name(), t.Name, ex)
	how := c.queried()
	if c.cfg.ServerSideRecursion {
		how = "expanded by the server (!i,1), " + how
	}
	out := make([]asn.ASNFact, 0, len(ex.members))
	details := map[string]string{}
	for _, m := range ex.members {
		p := strings.Join(m.path, " > ")
		d, ok := details[p]
		if !ok {
			d = "member of " + p + " (" + how + ")"
			details[p] = d
		}
		out = append(out, asn.ASNFact{ASN: m.asn, Evidence: asn.Evidence{Source: c.Name(), Detail: d, Seen: seen}})
	}
	return out, nil
}

func logExpansion(src, target string, ex *expansion) {
	if len(ex.skipped) > 0 {
		logrus.WithFields(logrus.Fields{"source": src, "target": target}).
			Infof("skipped %d private/reserved/documentation ASNs in AS-SETs: %s", len(ex.skipped), sample(ex.skipped))
	}
	if len(ex.invalid) > 0 {
		logrus.WithFields(logrus.Fields{"source": src, "target": target}).
			Warnf("ignored %d AS-SET members that are neither an ASN nor an as-set name: %s", len(ex.invalid), sample(ex.invalid))
	}
}

func sample(list []string) string {
	if len(list) > 10 {
		return strings.Join(list[:10], " ") + " ..."
	}
	return strings.Join(list, " ")
}

// lookupSets asks !iSET (non-recursive) for each name, pipelined.
func (c *Client) lookupSets(ctx context.Context, names []string) ([]setAnswer, error) {
	var qs queries
	for _, n := range names {
		qs.add("!i", n, "")
	}
	out := make([]setAnswer, len(names))
	err := c.do(ctx, qs, func(i int, a answer) error {
		switch a.kind {
		case 'A':
			out[i] = setAnswer{found: true, members: strings.Fields(string(a.data))}
		case 'C', 'D':
			// Unknown or empty set: no members.
		default:
			return answerError(a)
		}
		return nil
	})
	return out, err
}

// expandOnServer asks !iSET,1 per root set.
func (c *Client) expandOnServer(ctx context.Context, roots []string) (*expansion, error) {
	var qs queries
	for _, r := range roots {
		qs.add("!i", strings.ToUpper(r), ",1")
	}
	ex := &expansion{}
	err := c.do(ctx, qs, func(i int, a answer) error {
		switch a.kind {
		case 'A':
		case 'C', 'D':
			return nil
		default:
			return answerError(a)
		}
		seen := map[uint32]bool{}
		path := []string{strings.ToUpper(roots[i])}
		for _, m := range strings.Fields(string(a.data)) {
			m = strings.ToUpper(m)
			v, err := rpsl.ParseASN(m)
			if err != nil || !isASNToken(m) {
				ex.invalid = append(ex.invalid, m)
				continue
			}
			if SpecialASN(v) {
				ex.skipped = append(ex.skipped, m)
				continue
			}
			if !seen[v] {
				seen[v] = true
				ex.members = append(ex.members, member{asn: v, path: path})
			}
		}
		return nil
	})
	return ex, err
}

// Resolve returns the route (!gASn) and route6 (!6ASn) prefixes of the
// ASNs, pipelined on one connection. Answers are kept as raw bytes until
// the last one has arrived, then parsed into a slice of exactly the right
// size: with tens of thousands of prefixes, growing a slice of facts as
// answers come in costs more than the queries.
func (c *Client) Resolve(ctx context.Context, _ *asn.Target, asns []uint32) (asn.Facts, error) {
	if len(asns) == 0 {
		return asn.Facts{}, nil
	}
	seen := time.Now().UTC().Truncate(time.Second)
	var qs queries
	qs.buf = make([]byte, 0, 16*len(asns))
	qs.ends = make([]int, 0, 2*len(asns))
	for _, a := range asns {
		qs.addASN("!gAS", a)
		qs.addASN("!6AS", a)
	}
	type span struct{ query, start, end int }
	var arena []byte
	var spans []span
	count := 0
	err := c.do(ctx, qs, func(i int, a answer) error {
		switch a.kind {
		case 'A':
		case 'C', 'D':
			return nil
		default:
			return answerError(a)
		}
		start := len(arena)
		arena = append(arena, a.data...)
		spans = append(spans, span{i, start, len(arena)})
		count += countFields(a.data)
		return nil
	})
	if err != nil {
		return asn.Facts{}, fmt.Errorf("irr %s: %w", c.addr, err)
	}
	how := c.queried()
	name := c.Name()
	out := asn.Facts{Prefixes: make([]asn.PrefixFact, 0, count)}
	for _, sp := range spans {
		origin := asns[sp.query/2]
		v6 := sp.query%2 == 1
		class := "route"
		if v6 {
			class = "route6"
		}
		ev := asn.Evidence{Source: name, Detail: class + " object, origin AS" + strconv.FormatUint(uint64(origin), 10) + " (" + how + ")", Seen: seen}
		err := eachField(arena[sp.start:sp.end], func(f []byte) error {
			p, err := parsePrefix(f)
			if err != nil {
				return &ProtocolError{err.Error()}
			}
			if p.Addr().Is6() != v6 {
				return &ProtocolError{fmt.Sprintf("%s in a %s answer", p, class)}
			}
			out.Prefixes = append(out.Prefixes, asn.PrefixFact{Prefix: p, Origin: origin, Evidence: ev})
			return nil
		})
		if err != nil {
			return asn.Facts{}, fmt.Errorf("irr %s: %s: %w", c.addr, qs.get(sp.query), err)
		}
	}
	return out, nil
}

func countFields(b []byte) int {
	n := 0
	_ = eachField(b, func([]byte) error { n++; return nil })
	return n
}

func answerError(a answer) error {
	switch a.kind {
	case 'F':
		return fmt.Errorf("server error: F %s", a.msg)
	case 'E':
		return errors.New("server answered E (multiple copies of the key)")
	}
	return &ProtocolError{fmt.Sprintf("unexpected %c answer", a.kind)}
}

// eachField calls fn for each white-space separated field of b.
func eachField(b []byte, fn func([]byte) error) error {
	i := 0
	for i < len(b) {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		j := i
		for j < len(b) && !isSpace(b[j]) {
			j++
		}
		if j > i {
			if err := fn(b[i:j]); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// parsePrefix parses a prefix from an answer. IPv4 is parsed by hand to
// avoid a string allocation per prefix (answers hold tens of thousands);
// everything else goes through netip. Host bits set is an error: IRRd
// returns canonical prefixes, so anything else is not a real answer.
func parsePrefix(b []byte) (netip.Prefix, error) {
	var a [4]byte
	n, part, digits, bits := 0, 0, 0, -1
	ok := true
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && part == 0 {
				ok = false // leading zero
			}
			part = part*10 + int(c-'0')
			digits++
			if digits > 3 || part > 255 {
				ok = false
			}
		case c == '.' && n < 3 && digits > 0:
			a[n] = byte(part)
			n, part, digits = n+1, 0, 0
		case c == '/' && n == 3 && digits > 0:
			a[3] = byte(part)
			bits = 0
			rest := b[i+1:]
			if len(rest) == 0 || len(rest) > 2 || len(rest) == 2 && rest[0] == '0' {
				ok = false
			}
			for _, d := range rest {
				if d < '0' || d > '9' {
					ok = false
					break
				}
				bits = bits*10 + int(d-'0')
			}
			if ok && bits <= 32 {
				p := netip.PrefixFrom(netip.AddrFrom4(a), bits)
				if p.Masked() != p {
					return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set", b)
				}
				return p, nil
			}
			ok = false
		default:
			ok = false
		}
		if !ok || bits >= 0 {
			break
		}
	}
	p, err := netip.ParsePrefix(string(b))
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("not a prefix: %q", clip(b))
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set", b)
	}
	return p, nil
}

// do sends the queries pipelined on the persistent connection and passes
// each answer to fn, in order. A connection that was idle between calls and
// breaks before the first answer (the server timed it out) is re-opened
// once; any other failure closes it and is returned, naming the query (the
// callers add the server).
func (c *Client) do(ctx context.Context, qs queries, fn func(int, answer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if c.conn == nil {
			cn, err := c.connect(ctx)
			if err != nil {
				return err
			}
			c.conn = cn
		}
		done, err := c.conn.batch(ctx, c.cfg.Timeout, qs, fn)
		if err == nil {
			return nil
		}
		c.conn.nc.Close()
		c.conn = nil
		if attempt == 0 && reused && done == 0 && ctx.Err() == nil && brokenConn(err) {
			continue
		}
		return err
	}
}

// brokenConn reports whether err means the peer closed the connection.
func brokenConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connect dials and sets up the session: !! (keep the connection open),
// !n (identify), !s (sources).
func (c *Client) connect(ctx context.Context) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	nc, err := c.dial(dctx, "tcp", c.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect: %w", ctx.Err())
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	cn := &conn{nc: nc, ar: newAnswerReader(nc)}
	var setup queries
	setup.buf = []byte("!!\n") // no answer: not counted as a query
	setup.first = len(setup.buf)
	setup.add("!n", c.cfg.Agent, "")
	if len(c.cfg.Sources) > 0 {
		setup.add("!s", strings.Join(c.cfg.Sources, ","), "")
	}
	if _, err := cn.batch(ctx, c.cfg.Timeout, setup, func(i int, a answer) error {
		switch a.kind {
		case 'C', 'A':
			return nil
		case 'F':
			if i == 1 {
				return fmt.Errorf("server rejected the sources: F %s", a.msg)
			}
		}
		return answerError(a)
	}); err != nil {
		nc.Close()
		return nil, err
	}
	return cn, nil
}

// conn is one open connection to the server.
type conn struct {
	nc net.Conn
	ar *answerReader
}

// queries is a batch of queries as one buffer of newline-terminated lines
// (one allocation and one write for thousands of queries).
type queries struct {
	buf   []byte
	first int   // where the first query starts (after "!!\n", which has no answer)
	ends  []int // end of each query's line, after its newline
}

func (q *queries) add(a, b, c string) {
	q.buf = append(append(append(q.buf, a...), b...), c...)
	q.buf = append(q.buf, '\n')
	q.ends = append(q.ends, len(q.buf))
}

func (q *queries) addASN(prefix string, a uint32) {
	q.buf = strconv.AppendUint(append(q.buf, prefix...), uint64(a), 10)
	q.buf = append(q.buf, '\n')
	q.ends = append(q.ends, len(q.buf))
}

func (q *queries) len() int { return len(q.ends) }

// get returns query i without its newline.
func (q *queries) get(i int) string {
	start := q.first
	if i > 0 {
		start = q.ends[i-1]
	}
	return string(q.buf[start : q.ends[i]-1])
}

// aLongTimeAgo is a deadline in the past: it makes blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// batch writes the queries (in a goroutine, so that neither side's socket
// buffer can fill up and stall both) while reading the answers in order.
// It returns how many answers were handled.
func (cn *conn) batch(ctx context.Context, timeout time.Duration, qs queries, fn func(int, answer) error) (int, error) {
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	last := time.Now()
	cn.nc.SetDeadline(last.Add(timeout))
	werr := make(chan error, 1)
	go func() {
		const chunk = 64 << 10
		for b := qs.buf; len(b) > 0; {
			n := min(len(b), chunk)
			if _, err := cn.nc.Write(b[:n]); err != nil {
				werr <- err
				return
			}
			b = b[n:]
			cn.nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		werr <- nil
	}()
	fail := func(i int, err error) (int, error) {
		cn.nc.Close() // unblocks the writer
		<-werr
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if err == io.EOF {
			err = fmt.Errorf("connection closed by the server: %w", err)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no answer within %s (timeout)", timeout)
		}
		return i, fmt.Errorf("%s: %w", qs.get(i), err)
	}
	for i := range qs.len() {
		a, err := cn.ar.read()
		if err != nil {
			return fail(i, err)
		}
		if t := time.Now(); t.Sub(last) > timeout/8 {
			// Progress: the server gets another timeout for what is left.
			cn.nc.SetReadDeadline(t.Add(timeout))
			last = t
		}
		if err := fn(i, a); err != nil {
			return fail(i, err)
		}
	}
	if err := <-werr; err != nil {
		cn.nc.Close()
		return qs.len(), fmt.Errorf("writing queries: %w", err)
	}
	return qs.len(), nil
}
