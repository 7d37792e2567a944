package whoisdump_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/whoisdump"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// realAPNIC is the decompressed real APNIC dump.
func realAPNIC(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open(apnicInetnum)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// lineOf is the 1-based line of the first occurrence of s in data.
func lineOf(t *testing.T, data []byte, s string) int {
	t.Helper()
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		t.Fatalf("%q not in the data", s)
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

// TestBadInput: a cut gzip, an object with a broken attribute line, a file
// that is not RPSL and an inetnum with a bad range each give an error
// naming the file and line (and the compressed byte offset for a damaged
// stream); through the engine, the source is listed as incomplete for the
// target, and what was read before the damage and the other dumps' facts
// are kept.
func TestBadInput(t *testing.T) {
	real := realAPNIC(t)
	// CSIRO's 202.8.32.0/24 comes early in the dump, HK Cable's
	// 61.10.0.0/18 late.
	early, late := lineOf(t, real, "inetnum:        202.8.32.0 - 202.8.32.255"), lineOf(t, real, "inetnum:        61.10.0.0 - 61.10.63.255")
	if early >= late {
		t.Fatalf("lines %d %d", early, late)
	}
	cut := func() []byte {
		z := gz(t, real)
		return z[:len(z)*late/bytes.Count(real, []byte("\n"))]
	}()
	lines := strings.SplitAfter(string(real), "\n")
	edit := func(at int, from, to string) []byte {
		l := slices.Clone(lines)
		if !strings.HasPrefix(l[at-1], from) {
			t.Fatalf("line %d is %q", at, l[at-1])
		}
		l[at-1] = to
		return []byte(strings.Join(l, ""))
	}
	broken := edit(late+1, "netname:", "netname         HKCABLE-HK\n")
	badRange := edit(late, "inetnum:", "inetnum:        61.10.63.255 - 61.10.0.0\n")
	notRPSL, err := os.ReadFile("../rir/testdata/nro-delegated-stats.apnic-extended.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file string
		data       []byte
		want       string // regexp the error must match
		kept       bool   // the early prefix was read before the damage
	}{
		{"cut gzip", "apnic.db.inetnum.gz", cut, `apnic\.db\.inetnum\.gz:\d+: unexpected EOF \(gzip stream damaged near compressed byte \d+\)`, true},
		{"broken attribute", "apnic.db.inetnum", broken, fmt.Sprintf(`apnic\.db\.inetnum:%d: want "attribute: value", got "netname         HKCABLE-HK"`, late+1), true},
		{"bad range", "apnic.db.inetnum.gz", gz(t, badRange), fmt.Sprintf(`apnic\.db\.inetnum\.gz:%d: inetnum "61\.10\.63\.255 - 61\.10\.0\.0": range ends before it starts`, late), true},
		{"not rpsl", "delegated-apnic-extended", notRPSL, `delegated-apnic-extended:\d+: want "attribute: value", got "2\.3\|apnic\|`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := write(t, tc.file, tc.data)
			s, err := whoisdump.New(whoisdump.Options{Registry: "test", Dumps: []whoisdump.Dump{{Path: bad}, {Path: ripeObjects}}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tg := asn.Target{Name: "t", Names: []string{"HK Cable", "CSIRO", "Taras Shevchenko University"}}
			snap, err := (&asn.Engine{Sources: []asn.Source{s, &listSource{}}}).Run(context.Background(), []asn.Target{tg})
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Incomplete) != 1 || snap.Incomplete[0].Source != "whois:test" || snap.Incomplete[0].Target != "t" {
				t.Fatalf("incomplete %+v", snap.Incomplete)
			}
			msg := snap.Incomplete[0].Error
			if !regexp.MustCompile(tc.want).MatchString(msg) || !strings.Contains(msg, bad) {
				t.Errorf("error %q, want %s naming %s", msg, tc.want, bad)
			}
			has := map[string]bool{}
			for _, p := range snap.Target("t").Prefixes {
				has[p.Prefix.String()] = true
			}
			if !has["91.202.128.0/22"] {
				t.Error("the other dump's prefix was lost")
			}
			if has["202.8.32.0/24"] != tc.kept {
				t.Errorf("prefix read before the damage: %v, want %v", has["202.8.32.0/24"], tc.kept)
			}
			if has["61.10.0.0/18"] {
				t.Error("prefix of the damaged object kept")
			}
		})
	}
}

// generate writes a gzip-compressed dump of n inetnum objects varied from
// a real APNIC object (ranges walk through 10.0.0.0/8 and up); every
// 50,000th is named NEEDLE-<i>. It returns the uncompressed size.
func generate(t *testing.T, path string, n int) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	bw := bufio.NewWriterSize(zw, 1<<20)
	var size int64
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{byte(11 + i>>16), byte(i >> 8), byte(i), 0})
		b := netip.AddrFrom4([4]byte{byte(11 + i>>16), byte(i >> 8), byte(i), 255})
		netname := fmt.Sprintf("CSIRO-HO%d", i)
		if i%50000 == 0 {
			netname = fmt.Sprintf("NEEDLE-%d", i)
		}
		k, _ := fmt.Fprintf(bw, "inetnum:        %s - %s\nnetname:        %s\ndescr:          CSIRO\ndescr:          CSIRO Head Office\n"+
			"descr:          407 Royal Parade\ndescr:          Parkville, Vic\ncountry:        AU\norg:            ORG-CSAI1-AP\n"+
			"admin-c:        CIS2-AP\ntech-c:         CIS2-AP\nabuse-c:        AC2006-AP\nstatus:         ALLOCATED PORTABLE\n"+
			"remarks:        --------------------------------------------------------\nremarks:        To report network abuse, please contact mnt-irt\n"+
			"mnt-by:         APNIC-HM\nmnt-lower:      MAINT-AU-CSIRO\nmnt-routes:     MAINT-AU-CSIRO\nmnt-irt:        IRT-CSIRO-AU\n"+
			"last-modified:  2020-10-20T00:55:58Z\nsource:         APNIC\n\n",
			a, b, netname)
		size += int64(k)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return size
}

// TestMemoryBounded: scanning a dump far larger than memory allows holds
// only what concerns the target.
func TestMemoryBounded(t *testing.T) {
	n := 300000 // about 220 MB uncompressed
	if testing.Short() || raceDetector {
		n = 20000
	}
	path := filepath.Join(t.TempDir(), "big.db.inetnum.gz")
	size := generate(t, path, n)
	s, err := whoisdump.New(whoisdump.Options{Registry: "test", Dumps: []whoisdump.Dump{{Path: path}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := watchHeap()
	facts, err := s.Resolve(context.Background(), &asn.Target{Name: "t", Names: []string{"needle"}}, nil)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if want := (n + 49999) / 50000; len(facts.Prefixes) != want {
		t.Fatalf("%d prefixes, want %d", len(facts.Prefixes), want)
	}
	t.Logf("%d objects, %d MB uncompressed: peak live heap %d MB", n, size>>20, peak>>20)
	if peak > 64<<20 {
		t.Errorf("peak live heap %d MB scanning a %d MB dump", peak>>20, size>>20)
	}
}

// watchHeap samples the live heap (runtime/metrics, which does not stop
// the world) until the returned function is called, which returns the
// largest value seen.
func watchHeap() func() uint64 {
	runtime.GC()
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// TestURLDumps: dumps given by URL are downloaded once per MaxAge, read
// like files (the server's Last-Modified dates objects that carry no
// date), and removed by Close; a cut download makes the source incomplete
// and the other dumps still count.
func TestURLDumps(t *testing.T) {
	objects, err := os.ReadFile(ripeObjects)
	if err != nil {
		t.Fatal(err)
	}
	autnums, err := os.ReadFile(ripeAutNum)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Last-Modified", "Mon, 20 Nov 2023 01:02:03 GMT")
		switch r.URL.Path {
		case "/ripe/dbase/split/ripe.db.aut-num.gz":
			w.Write(autnums)
		case "/ripe/objects.db":
			w.Write(objects)
		case "/ripe/cut.db.gz":
			w.Header().Set("Content-Length", fmt.Sprint(len(autnums)))
			w.Write(autnums[:len(autnums)/2])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tmp := t.TempDir() // the download directory is made under it
	t.Setenv("TMPDIR", tmp)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := whoisdump.New(whoisdump.Options{Registry: "ripe", Now: func() time.Time { return now },
		Dumps: []whoisdump.Dump{{URL: srv.URL + "/ripe/dbase/split/ripe.db.aut-num.gz"}, {URL: srv.URL + "/ripe/objects.db"}}})
	if err != nil {
		t.Fatal(err)
	}
	kyiv := &asn.Target{Name: "kyiv", Names: []string{"Taras Shevchenko University"}}
	facts, err := s.Resolve(context.Background(), kyiv, nil)
	if err != nil || len(facts.Prefixes) != 1 || !facts.Prefixes[0].Evidence.Seen.Equal(time.Date(2023, 11, 20, 1, 2, 3, 0, time.UTC)) {
		t.Fatalf("%+v %v", facts.Prefixes, err)
	}
	rack := &asn.Target{Name: "rack", ASNs: []asn.SeedASN{{ASN: 33070}}}
	if found, err := s.Discover(context.Background(), rack); err != nil || !slices.Equal(asnSet(found), []uint32{19994, 27357}) {
		t.Fatalf("discover %v %v", asnSet(found), err)
	}
	if hits.Load() != 2 {
		t.Errorf("%d downloads, want 2", hits.Load())
	}
	prov := s.Provenance()
	if len(prov) != 2 || !strings.HasPrefix(prov[0].Input, srv.URL) || len(prov[0].SHA256) != 64 {
		t.Errorf("provenance %+v", prov)
	}
	now = now.Add(whoisdump.DefaultMaxAge + time.Minute)
	if _, err := s.Resolve(context.Background(), kyiv, nil); err != nil || hits.Load() != 4 {
		t.Errorf("after MaxAge: %d downloads, %v", hits.Load(), err)
	}
	// The registry is down when the copies are due again: the error is
	// reported, and the previous copies still count.
	down.Store(true)
	now = now.Add(whoisdump.DefaultMaxAge + time.Minute)
	facts, err = s.Resolve(context.Background(), kyiv, nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || len(facts.Prefixes) != 1 {
		t.Errorf("registry down: %d prefixes, %v", len(facts.Prefixes), err)
	}
	down.Store(false)
	dirs, _ := filepath.Glob(filepath.Join(tmp, "asfence-whois-ripe-*"))
	if len(dirs) != 1 {
		t.Fatalf("download directories %v", dirs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Errorf("download directory %s left after Close", dirs[0])
	}

	cut, err := whoisdump.New(whoisdump.Options{Registry: "ripe", Dumps: []whoisdump.Dump{{URL: srv.URL + "/ripe/cut.db.gz"}, {URL: srv.URL + "/ripe/objects.db"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	facts, err = cut.Resolve(context.Background(), kyiv, nil)
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/ripe/cut.db.gz: ") || len(facts.Prefixes) != 1 {
		t.Errorf("cut download: %d prefixes, %v", len(facts.Prefixes), err)
	}
}

// TestRegistrationPrefixBlocked: a registration gives the prefix without
// an origin; the policy keeps and blocks it, and the AS-path filter holds
// the target's ASNs only.
func TestRegistrationPrefixBlocked(t *testing.T) {
	s := newSource(t, ripeObjects)
	tg := asn.Target{Name: "likhner", ASNs: []asn.SeedASN{{ASN: 215778}}}
	snap, err := (&asn.Engine{Sources: []asn.Source{s}}).Run(context.Background(), []asn.Target{tg})
	if err != nil || len(snap.Incomplete) != 0 {
		t.Fatalf("%v %+v", err, snap.Incomplete)
	}
	p := netip.MustParsePrefix("2a11:f2c0:ffcb::/48")
	tr := snap.Target("likhner")
	if len(tr.Prefixes) != 1 || tr.Prefixes[0].Prefix != p || len(tr.Prefixes[0].Origins) != 0 {
		t.Fatalf("prefixes %+v", tr.Prefixes)
	}
	in := policy.DefaultPolicy().Apply(snap)
	if len(in.Dropped) != 0 {
		t.Fatalf("dropped %+v", in.Dropped)
	}
	if got := in.Exact("likhner", prefixset.IPv6); !slices.Equal(got, []netip.Prefix{p}) {
		t.Errorf("blocked %v", got)
	}
	if got := in.ASNs(""); !slices.Equal(got, []uint32{215778}) {
		t.Errorf("AS-path filter %v", got)
	}
}

// TestFollowFromDiscoveredASNs: the engine's closure asks the source again
// with ASNs another source found: AS27357 comes from elsewhere, and its
// aut-num's organisation brings in the other Rackspace aut-nums.
func TestFollowFromDiscoveredASNs(t *testing.T) {
	s := newSource(t, ripeAutNum)
	other := &listSource{found: []asn.ASNFact{{ASN: 27357, Evidence: asn.Evidence{Source: "other", Detail: "listed"}}}}
	tg := asn.Target{Name: "t", ASNs: []asn.SeedASN{{ASN: 64496}}}
	snap, err := (&asn.Engine{Sources: []asn.Source{other, s}}).Run(context.Background(), []asn.Target{tg})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	evidence := map[uint32][]string{}
	for _, a := range snap.Target("t").ASNs {
		got = append(got, a.ASN)
		for _, e := range a.Evidence {
			evidence[a.ASN] = append(evidence[a.ASN], e.Source+": "+e.Detail)
		}
	}
	if !slices.Equal(got, []uint32{19994, 27357, 33070, 64496}) {
		t.Fatalf("ASNs %v", got)
	}
	if !slices.Contains(evidence[33070], "whois:test: aut-num AS33070 org: ORG-RA33-RIPE, the org of AS27357's aut-num") {
		t.Errorf("AS33070 evidence %v", evidence[33070])
	}
}

// listSource discovers a fixed list (another registry, for the closure).
type listSource struct{ found []asn.ASNFact }

func (l *listSource) Name() string { return "other" }
func (l *listSource) Discover(context.Context, *asn.Target) ([]asn.ASNFact, error) {
	return l.found, nil
}
