package tables

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/internal/fetch"
)

// rawRecords returns the decompressed bytes of the first n records of a
// sample, and where each record starts.
func rawRecords(t testing.TB, file string, n int) ([]byte, []int) {
	t.Helper()
	var out []byte
	var offs []int
	for i, r := range readRecords(t, file) {
		if i == n {
			break
		}
		offs = append(offs, len(out))
		var hdr [12]byte
		binary.BigEndian.PutUint32(hdr[0:], r.h.Timestamp)
		binary.BigEndian.PutUint16(hdr[4:], uint16(r.h.Type))
		binary.BigEndian.PutUint16(hdr[6:], r.h.SubType)
		binary.BigEndian.PutUint32(hdr[8:], uint32(len(r.body)))
		out = append(append(out, hdr[:]...), r.body...)
	}
	return out, offs
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Damaged input: each case gives an error that names the file and the
// byte offset (or line) and says what is wrong; what was read before the
// damage (and, where the framing holds, after it) is kept.
func TestBadInput(t *testing.T) {
	const v1 = "testdata/mrt/bview.20020722.2337.gz"
	recs, offs := rawRecords(t, v1, 1000)
	whole, err := os.ReadFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	// Record 500 of the 2002 RIB, to patch: its AS_PATH attribute starts
	// after the 22-byte TABLE_DUMP entry header and ORIGIN (4 bytes).
	r500 := offs[500]
	attrs := r500 + 12 + 22
	if recs[attrs+4+1] != attrASPath {
		t.Fatalf("record 500: attribute at +4 is type %d, not AS_PATH", recs[attrs+5])
	}
	patch := func(at int, b ...byte) []byte {
		out := bytes.Clone(recs)
		copy(out[at:], b)
		return out
	}
	unknown := bytes.Clone(recs[:offs[500]])
	unknown = append(unknown, 0, 0, 0, 1, 0, 99, 0, 7, 0, 0, 0, 3, 'x', 'y', 'z')
	unknown = append(unknown, recs[offs[500]:]...)

	csvRows, err := os.ReadFile("testdata/ip2asn/ip-location-db-asn-ipv6.excerpt.csv")
	if err != nil {
		t.Fatal(err)
	}
	csvLines := strings.SplitAfter(string(csvRows), "\n")
	csvLines[40] = "2001:db8::,not-an-address,64500,\"Example\"\n"
	badCSV := strings.Join(csvLines, "")

	for _, tc := range []struct {
		name   string
		format Format
		data   []byte
		want   string // regexp the error must match
		// routes the index must still hold: before the damage, and all
		// the others where the framing holds
		minRoutes, maxRoutes int
	}{
		{"cut gzip", MRT, whole[:len(whole)/2], `cut\.gz: byte offset \d+: gzip data ends early \(file cut short\?\)`, 40000, 70000},
		{"record past the end", MRT, recs[:len(recs)-10], `past-end: byte offset ` + fmt.Sprint(offs[999]) + `: TABLE_DUMP/1 record of \d+ bytes runs past the end of the data \(\d+ bytes left\)`, 990, 999},
		{"unknown record type", MRT, unknown, `unknown: byte offset ` + fmt.Sprint(offs[500]) + `: type 99/7 record: unsupported MRT record type 99 subtype 7`, 990, 1000},
		{"AS_PATH longer than the attributes", MRT, patch(attrs+4+2, 200), `aspath-len: byte offset ` + fmt.Sprint(r500) + `: TABLE_DUMP/1 record: [0-9./]+: attribute AS_PATH at \+4: length 200 runs past the end of the attributes`, 990, 999},
		{"AS_PATH segment longer than its attribute", MRT, patch(attrs+4+3+1, 60), `aspath-seg: byte offset ` + fmt.Sprint(r500) + `: TABLE_DUMP/1 record: [0-9./]+: attribute AS_PATH \(2-byte ASes, \d+ bytes\): segment at \+0 says 60 ASes`, 990, 999},
		{"attributes longer than the record", MRT, patch(r500+12+20, 0xff, 0xff), `attr-len: byte offset ` + fmt.Sprint(r500) + `: TABLE_DUMP/1 record: [0-9./]+: attributes of 65535 bytes run past the end of the record`, 990, 999},
		{"record longer than any", MRT, patch(offs[10]+8, 0x7f, 0xff, 0xff, 0xff), `huge: byte offset ` + fmt.Sprint(offs[10]) + `: TABLE_DUMP/1 record says it is 2147483647 bytes long, more than the 16777216-byte limit`, 10, 10},
		{"CSV with a bad row", IP2ASN, []byte(badCSV), `bad\.csv: line 41: invalid address "not-an-address"`, 100, 1000},
		{"pfx2as line", Pfx2as, []byte("1.0.0.0\t24\t13335\n1.0.4.0\t22\tx\n1.0.16.0\t24\t2519\n"), `bad\.pfx2as: line 2: invalid ASN "x"`, 2, 2},
		{"not JSON", BGPTools, []byte("{\"CIDR\":\"192.0.2.0/24\",\"ASN\":64500,\"Hits\":1}\n<html>\n"), `table\.jsonl: line 2: not a JSON object`, 1, 1},
		{"cut xz", IP2ASN, mustRead(t, "testdata/ip2asn/asn-db-ip2asn-v4.tsv.xz")[:2000], `cut\.xz: line \d+ \(byte offset \d+\): xz data ends early`, 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := map[string]string{"cut gzip": "cut.gz", "record past the end": "past-end", "unknown record type": "unknown",
				"AS_PATH longer than the attributes": "aspath-len", "AS_PATH segment longer than its attribute": "aspath-seg",
				"attributes longer than the record": "attr-len", "record longer than any": "huge", "CSV with a bad row": "bad.csv",
				"pfx2as line": "bad.pfx2as", "not JSON": "table.jsonl", "cut xz": "cut.xz"}[tc.name]
			path := writeFile(t, name, tc.data)
			s, x, err := scanFile(t, tc.format, path)
			if err == nil || !regexp.MustCompile(`^`+regexp.QuoteMeta(filepath.Dir(path))+`/`+tc.want).MatchString(err.Error()) {
				t.Fatalf("error %v\nwant %s", err, tc.want)
			}
			if x.Len() < tc.minRoutes || x.Len() > tc.maxRoutes {
				t.Fatalf("%d routes kept, want %d-%d", x.Len(), tc.minRoutes, tc.maxRoutes)
			}
			// Asking again neither reads the file again nor loses the
			// partial index.
			if _, err2 := s.Resolve(context.Background(), nil, []uint32{1239, 701, 64500, 13335}); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("resolve error %v, want the scan's", err2)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Through the engine: a broken table is listed as incomplete with the
// error naming its file and offset; its routes read before the damage
// count, and so does every other source.
func TestBrokenTableIsIncompleteOthersCount(t *testing.T) {
	whole := mustRead(t, "testdata/mrt/bview.20020722.2337.gz")
	cut := writeFile(t, "rrc00-cut.gz", whole[:len(whole)/3])
	broken, err := New(Options{Format: MRT, Path: cut, Source: "rrc00"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := New(Options{Format: MRT, Path: "testdata/mrt/updates.20160811.1600.gz", Source: "updates"})
	if err != nil {
		t.Fatal(err)
	}
	e := &asn.Engine{Sources: []asn.Source{broken, good}}
	// AS80 (GE) originates 3.0.0.0/8, early in the 2002 table; AS28573
	// is in the 2016 updates.
	s, err := e.Run(context.Background(), []asn.Target{{Name: "t", ASNs: []asn.SeedASN{{ASN: 80}, {ASN: 28573}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) != 1 || s.Incomplete[0].Source != "table:rrc00" ||
		!regexp.MustCompile(`rrc00-cut\.gz: byte offset \d+: gzip data ends early`).MatchString(s.Incomplete[0].Error) {
		t.Fatalf("incomplete: %+v", s.Incomplete)
	}
	tr := s.Target("t")
	got := map[string]bool{}
	for _, p := range tr.Prefixes {
		for _, ev := range p.Evidence {
			got[ev.Source] = true
		}
	}
	if !got["table:rrc00"] || !got["table:updates"] {
		t.Fatalf("evidence sources %v: the broken table's early routes or the good table's are missing", got)
	}
	if !slices.ContainsFunc(tr.Prefixes, func(p asn.Prefix) bool { return p.Prefix == netip.MustParsePrefix("3.0.0.0/8") }) {
		t.Fatal("3.0.0.0/8 (read before the cut) lost")
	}
}

// ribStream produces plain TABLE_DUMP_V2 data of about size bytes, made on
// the fly: dump after dump of the same table (a peer table, then RIB
// records for 65,536 IPv4 prefixes, 10 entries each, 4-byte AS paths), so
// that the file grows without the table growing.
type ribStream struct {
	size, sent int64
	block      []byte
	pos        int
}

const streamPeers = 10

func newRIBStream(size int64) *ribStream {
	s := &ribStream{size: size}
	var b []byte
	for i := range 65536 {
		var body []byte
		body = binary.BigEndian.AppendUint32(body, uint32(i))
		body = append(body, 24, 10, byte(i>>8), byte(i))
		body = binary.BigEndian.AppendUint16(body, streamPeers)
		for p := range streamPeers {
			attrs := []byte{0x40, 1, 1, 0} // ORIGIN IGP
			path := []byte{segSequence, 3}
			for _, a := range []uint32{64496 + uint32(p), 3356, 4200000000 + uint32(i%1000)} {
				path = binary.BigEndian.AppendUint32(path, a)
			}
			attrs = append(attrs, 0x40, attrASPath, byte(len(path)))
			attrs = append(attrs, path...)
			body = binary.BigEndian.AppendUint16(body, uint16(p))
			body = binary.BigEndian.AppendUint32(body, 1700000000)
			body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
			body = append(body, attrs...)
		}
		b = appendRecord(b, 1700000000, 13, 2, body)
	}
	s.block = append(peerTable(streamPeers), b...)
	return s
}

func appendRecord(b []byte, ts uint32, typ, sub uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, ts)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, sub)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// peerTable is a PEER_INDEX_TABLE record with n IPv4 peers, 4-byte ASes.
func peerTable(n int) []byte {
	body := []byte{192, 0, 2, 1, 0, 0}
	body = binary.BigEndian.AppendUint16(body, uint16(n))
	for i := range n {
		body = append(body, 2, 192, 0, 2, byte(i), 192, 0, 2, byte(i))
		body = binary.BigEndian.AppendUint32(body, 64496+uint32(i))
	}
	return appendRecord(nil, 1700000000, 13, 1, body)
}

func (s *ribStream) Read(p []byte) (int, error) {
	if s.sent >= s.size && s.pos == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.block[s.pos:])
	s.pos = (s.pos + n) % len(s.block)
	s.sent += int64(n)
	return n, nil
}

// A 2 GB table is read with bounded memory: the heap stays far below the
// file's size (the index holds 65,536 routes however often they repeat).
func TestTwoGigabyteTableBoundedMemory(t *testing.T) {
	size := int64(2 << 30)
	if testing.Short() || raceEnabled {
		size = 256 << 20 // the same check on a smaller stream
	}
	// The heap the scan adds: other tests' data (parsed bgpdump outputs)
	// may still be live in this process.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	s, err := New(Options{Format: MRT, Path: "testdata/mrt/bview.64k_stream_overflow.gz"}) // any path: the stream is fed directly
	if err != nil {
		t.Fatal(err)
	}
	stream := newRIBStream(size)
	t0 := time.Now()
	x, err := s.open(context.Background(), stream, fetch.Doc{Input: "stream"})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != 65536 || stream.sent < size || x.Stats.Peers != streamPeers {
		t.Fatalf("%d routes, %d bytes read, stats %+v", x.Len(), stream.sent, x.Stats)
	}
	if r := x.routes.at(0); r.peers != streamPeers || r.origin != 4200000000 || x.Stats.RIBRecords < 65536*2 {
		t.Fatalf("first route %+v", *r)
	}
	const bound = 256 << 20
	grew := peak.Load() - min(peak.Load(), base.HeapInuse)
	t.Logf("%d MB read in %s, peak heap in use %d MB (%d MB before)", stream.sent>>20, time.Since(t0).Round(time.Millisecond), peak.Load()>>20, base.HeapInuse>>20)
	if grew > bound {
		t.Fatalf("the heap grew by %d MB for a %d MB stream (bound %d MB)", grew>>20, stream.sent>>20, bound>>20)
	}
}
