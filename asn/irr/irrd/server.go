// Package irrd is an IRRd-protocol whois server over an index of RPSL
// objects. It answers the queries routing tools send (bgpq4, asfence's own
// client) as IRRd 4 does, so that tests and benchmarks run against real
// registry data on a local socket. It can inject faults (slow, garbage,
// cut, refused) for tests of client error handling.
package irrd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/rpsl"
)

// DefaultIdleTimeout is how long an idle connection stays open (IRRd's
// default; clients may change it with !t).
const DefaultIdleTimeout = 30 * time.Second

// Options configure a server.
type Options struct {
	// NoA disables the !a query (IRRd 4.1+): the server then answers like
	// an older IRRd, and bgpq4 falls back to !i,1 and one !g/!6 per ASN.
	NoA bool
	// Sources are the valid source names, in default priority order
	// (default: the index's sources, in file order).
	Sources []string
	// IdleTimeout closes idle connections (default DefaultIdleTimeout).
	IdleTimeout time.Duration
}

// Faults are injected into every answer while set (for tests).
type Faults struct {
	// Delay holds back every answer this long.
	Delay time.Duration
	// Garbage answers every query with text that is not the IRRd protocol.
	Garbage bool
	// CloseMidAnswer sends the first half of a data (A) answer, then
	// closes the connection: the first data answer of the connection, or
	// the one after CloseAfter complete data answers.
	CloseMidAnswer bool
	CloseAfter     int
	// Refuse closes every new connection at once, before reading.
	Refuse bool
}

// Stats count what the server saw.
type Stats struct {
	Connections int64
	Queries     int64
}

// Server is a running IRRd-protocol server.
type Server struct {
	idx  atomic.Pointer[irr.Index]
	opts Options
	ln   net.Listener
	quit chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	faults Faults
	conns  map[net.Conn]struct{}
	closed bool

	nconns   atomic.Int64
	nqueries atomic.Int64
}

// Listen starts a server on addr (e.g. "127.0.0.1:0") serving idx.
func Listen(addr string, idx *irr.Index, o Options) (*Server, error) {
	if idx == nil {
		return nil, errors.New("irrd: nil index")
	}
	if len(o.Sources) == 0 {
		o.Sources = idx.Sources()
	}
	for i, s := range o.Sources {
		o.Sources[i] = strings.ToUpper(s)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("irrd: %w", err)
	}
	s := &Server{opts: o, ln: ln, quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.idx.Store(idx)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listening address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetIndex replaces the data served, as an IRRd does when its database
// changes: each query is answered from one index, old or new. The valid
// sources stay those set at Listen.
func (s *Server) SetIndex(idx *irr.Index) error {
	if idx == nil {
		return errors.New("irrd: nil index")
	}
	s.idx.Store(idx)
	return nil
}

// SetFaults changes the injected faults; they apply to answers from now on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

func (s *Server) getFaults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns the connection and query counters.
func (s *Server) Stats() Stats {
	return Stats{Connections: s.nconns.Load(), Queries: s.nqueries.Load()}
}

// DropConnections closes every open connection, as a server does with idle
// ones; the listener keeps running.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Close stops the listener, closes all connections and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.quit:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: back off, do not spin
			continue
		}
		s.nconns.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			if s.getFaults().Refuse {
				return
			}
			s.serve(nc)
		}()
	}
}

// session is the per-connection state.
type session struct {
	s       *Server
	nc      net.Conn
	bw      *bufio.Writer
	multi   bool
	sources []string
	idle    time.Duration
	buf     []byte
	seenPfx map[netip.Prefix]struct{}
	answers int // data answers sent while CloseMidAnswer was set
}

func (s *Server) serve(nc net.Conn) {
	br := bufio.NewReaderSize(nc, 64<<10)
	ss := &session{s: s, nc: nc, sources: slices.Clone(s.opts.Sources), idle: s.opts.IdleTimeout, seenPfx: map[netip.Prefix]struct{}{}}
	// Writes get the idle timeout too: a client that stops reading must not
	// hold a goroutine forever.
	ss.bw = bufio.NewWriterSize(deadlineWriter{ss}, 64<<10)
	for {
		if br.Buffered() == 0 {
			if ss.bw.Flush() != nil {
				return
			}
			nc.SetReadDeadline(time.Now().Add(ss.idle))
		}
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return
			}
			if !ss.reply("F Query too long\n") {
				return
			}
			continue
		}
		if err != nil {
			// EOF without a final newline: IRRd ignores an unterminated query.
			ss.bw.Flush()
			return
		}
		q := string(bytes.TrimRight(line, "\r\n"))
		if q == "" {
			continue
		}
		s.nqueries.Add(1)
		keep := ss.handle(q)
		if !keep || !ss.multi {
			ss.bw.Flush()
			return
		}
	}
}

type deadlineWriter struct{ ss *session }

func (w deadlineWriter) Write(b []byte) (int, error) {
	w.ss.nc.SetWriteDeadline(time.Now().Add(w.ss.idle))
	return w.ss.nc.Write(b)
}

// handle answers one query; false closes the connection.
func (ss *session) handle(q string) bool {
	if q[0] != '!' {
		return ss.reply("%% ERROR: only IRRd-style (!) queries are supported by this server\n\n\n")
	}
	if len(q) == 1 {
		return ss.reply("F Missing IRRD command\n")
	}
	cmd, param := q[1], q[2:]
	if strings.ContainsRune("g6ins", rune(cmd)) && param == "" {
		return ss.reply(fmt.Sprintf("F Missing parameter for %c query\n", cmd))
	}
	switch cmd {
	case '!':
		ss.multi = true
		return true
	case 'q':
		return false
	case 'n':
		return ss.reply("C\n")
	case 'v':
		return ss.data([]byte("asfence-irrd -- IRRd 4 whois protocol subset"))
	case 't':
		v, err := strconv.Atoi(param)
		if err != nil || v < 1 || v > 1000 {
			return ss.reply("F Invalid value for timeout: " + param + "\n")
		}
		ss.idle = time.Duration(v) * time.Second
		return ss.reply("C\n")
	case 's':
		if param == "-lc" {
			return ss.data([]byte(strings.Join(ss.sources, ",")))
		}
		list := strings.Split(strings.ToUpper(param), ",")
		for _, src := range list {
			if !slices.Contains(ss.s.opts.Sources, src) {
				return ss.reply("F One or more selected sources are unavailable.\n")
			}
		}
		ss.sources = list
		return ss.reply("C\n")
	case 'g', '6':
		a, err := parseOrigin(param)
		if err != nil {
			return ss.reply("F " + err.Error() + "\n")
		}
		return ss.prefixes([]uint32{a}, cmd == 'g', cmd == '6')
	case 'i':
		name, recursive := strings.CutSuffix(param, ",1")
		var members []string
		if recursive {
			members = ss.recursiveASNs(name)
		} else if set, ok := ss.s.idx.Load().Set(name, ss.sources); ok {
			members = sortedUnique(set.Members)
			members = slices.DeleteFunc(members, func(m string) bool { return m == strings.ToUpper(name) })
		}
		if len(members) == 0 {
			return ss.reply("D\n")
		}
		return ss.data([]byte(strings.Join(members, " ")))
	case 'a':
		if ss.s.opts.NoA {
			return ss.reply("F Unrecognised command: a\n")
		}
		v4, v6 := true, true
		if strings.HasPrefix(param, "4") {
			param, v6 = param[1:], false
		} else if strings.HasPrefix(param, "6") {
			param, v4 = param[1:], false
		}
		if param == "" {
			return ss.reply("F Missing required set name for A query\n")
		}
		var asns []uint32
		for _, m := range ss.recursiveASNs(param) {
			if a, err := rpsl.ParseASN(m); err == nil {
				asns = append(asns, a)
			}
		}
		return ss.prefixes(asns, v4, v6)
	}
	return ss.reply(fmt.Sprintf("F Unrecognised command: %c\n", cmd))
}

// parseOrigin's errors are IRRd's reply texts, sent as they are after "F "
// (capitalised as IRRd writes them).
func parseOrigin(s string) (uint32, error) {
	if len(s) < 3 || !strings.EqualFold(s[:2], "AS") {
		//lint:ignore ST1005 an IRRd protocol reply
		return 0, fmt.Errorf("Invalid AS number %s: must start with 'AS'", s)
	}
	a, err := rpsl.ParseASN(s)
	if err != nil {
		//lint:ignore ST1005 an IRRd protocol reply
		return 0, fmt.Errorf("Invalid AS number %s", s)
	}
	return a, nil
}

// prefixes answers the distinct prefixes originated by the ASNs.
func (ss *session) prefixes(asns []uint32, v4, v6 bool) bool {
	b := ss.buf[:0]
	clear(ss.seenPfx)
	multi := len(asns) > 1 || len(ss.sources) > 1
	idx := ss.s.idx.Load() // one index for the whole answer
	for _, a := range asns {
		for _, fam := range [2]bool{false, true} {
			if fam && !v6 || !fam && !v4 {
				continue
			}
			for _, r := range idx.Routes(a, fam, ss.sources) {
				if multi {
					if _, dup := ss.seenPfx[r.Prefix]; dup {
						continue
					}
					ss.seenPfx[r.Prefix] = struct{}{}
				}
				if len(b) > 0 {
					b = append(b, ' ')
				}
				b = r.Prefix.AppendTo(b)
			}
		}
	}
	ss.buf = b
	if len(b) == 0 {
		return ss.reply("D\n")
	}
	return ss.data(b)
}

// recursiveASNs resolves a set into its member ASNs (sorted, upper-case),
// as IRRd's !i,1: nested sets are expanded once each, unknown sets
// contribute nothing.
func (ss *session) recursiveASNs(name string) []string {
	name = strings.ToUpper(name)
	seen := map[string]bool{name: true}
	queue := []string{name}
	asns := map[string]bool{}
	idx := ss.s.idx.Load() // one index for the whole answer
	for len(queue) > 0 {
		set, ok := idx.Set(queue[0], ss.sources)
		queue = queue[1:]
		if !ok {
			continue
		}
		for _, m := range set.Members {
			if _, err := parseOrigin(m); err == nil {
				asns[m] = true
			} else if !seen[m] {
				seen[m] = true
				queue = append(queue, m)
			}
		}
	}
	out := make([]string, 0, len(asns))
	for a := range asns {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

func sortedUnique(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}

// data writes an A answer: A<length>\n<data>\nC\n, where length counts the
// data and its newline.
func (ss *session) data(d []byte) bool {
	f := ss.s.getFaults()
	if !ss.wait(f) {
		return false
	}
	if f.Garbage {
		return ss.write(garbage)
	}
	if f.CloseMidAnswer && ss.answers >= f.CloseAfter {
		ss.bw.WriteString("A" + strconv.Itoa(len(d)+1) + "\n")
		ss.bw.Write(d[:len(d)/2])
		ss.bw.Flush()
		return false
	}
	if f.CloseMidAnswer {
		ss.answers++
	}
	ss.bw.WriteByte('A')
	ss.bw.WriteString(strconv.Itoa(len(d) + 1))
	ss.bw.WriteByte('\n')
	ss.bw.Write(d)
	_, err := ss.bw.WriteString("\nC\n")
	return ss.flushIfDelayed(f, err)
}

const garbage = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

// reply writes a status answer (C, D, F ...).
func (ss *session) reply(s string) bool {
	f := ss.s.getFaults()
	if !ss.wait(f) {
		return false
	}
	if f.Garbage {
		return ss.write(garbage)
	}
	_, err := ss.bw.WriteString(s)
	return ss.flushIfDelayed(f, err)
}

func (ss *session) write(s string) bool {
	ss.bw.WriteString(s)
	return ss.bw.Flush() == nil
}

func (ss *session) flushIfDelayed(f Faults, err error) bool {
	if err != nil {
		return false
	}
	if f.Delay > 0 {
		return ss.bw.Flush() == nil
	}
	return true
}

// wait applies the Delay fault; false when the server is closing.
func (ss *session) wait(f Faults) bool {
	if f.Delay <= 0 {
		return true
	}
	ss.bw.Flush()
	t := time.NewTimer(f.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ss.s.quit:
		return false
	}
}
