package rir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/files"
	"github.com/asfence/asfence/asn/internal/fetch"
)

const (
	apnicExt    = "testdata/nro-delegated-stats.apnic-extended.txt"
	arinExt     = "testdata/nro-delegated-stats.arin-extended.excerpt.txt"
	apnicStd    = "testdata/delegated-apnic-latest.20241001.excerpt.txt"
	constructed = "testdata/delegated-apnic-extended.constructed.txt"
)

func mustNew(t *testing.T, o Options) *Source {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func target(seeds ...uint32) *asn.Target {
	t := &asn.Target{Name: "test"}
	for _, s := range seeds {
		t.ASNs = append(t.ASNs, asn.SeedASN{ASN: s})
	}
	return t
}

func asnSet(facts []asn.ASNFact) []uint32 {
	var out []uint32
	for _, f := range facts {
		out = append(out, f.ASN)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func prefixSet(facts []asn.PrefixFact) []string {
	var out []string
	for _, f := range facts {
		out = append(out, f.Prefix.String())
	}
	slices.Sort(out)
	return out
}

func TestParseRealExtended(t *testing.T) {
	data, err := os.ReadFile(apnicExt)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Registry != "apnic" || f.Serial != "20190909" || !f.Extended {
		t.Fatalf("header: registry %q serial %q extended %v", f.Registry, f.Serial, f.Extended)
	}
	if want := time.Date(2019, 9, 9, 0, 0, 0, 0, time.UTC); !f.Date.Equal(want) {
		t.Errorf("date %v, want %v", f.Date, want)
	}
	for _, c := range []struct {
		asn   uint32
		first uint32
		id    string
		ok    bool
	}{
		{2497, 2497, "A91A7381", true},
		{2528, 2497, "A91A7381", true}, // last of the 32-ASN block
		{2529, 0, "", false},
		{4134, 4134, "A914EAE4", true},
		{172, 0, "", false},
		{4618, 0, "", false},
	} {
		r, ok := f.FindASN(c.asn)
		if ok != c.ok || ok && (r.First != c.first || r.OpaqueID != c.id) {
			t.Errorf("FindASN(%d) = %+v, %v; want first %d id %q found %v", c.asn, r, ok, c.first, c.id, c.ok)
		}
	}
	// available/reserved lines carry no holder and are dropped.
	for _, r := range f.Records {
		if r.Status != "allocated" && r.Status != "assigned" {
			t.Fatalf("kept %s record at line %d", r.Status, r.Line)
		}
	}
	if got := f.HolderASNs("A91A7381"); got != 38 {
		t.Errorf("A91A7381 holds %d ASNs, want 38 (AS2497+32 and six singles)", got)
	}
}

func TestDiscoverSameHolder(t *testing.T) {
	s := mustNew(t, Options{Path: apnicExt})
	facts, err := s.Discover(context.Background(), target(3717))
	if err != nil {
		t.Fatal(err)
	}
	if got := asnSet(facts); !slices.Equal(got, []uint32{4538}) {
		t.Fatalf("discovered %v, want [4538] (AS3717 and AS4538 share A91E5D61)", got)
	}
	ev := facts[0].Evidence
	if ev.Source != "rir:apnic" || ev.Detail != "same holder as AS3717 (opaque-id A91E5D61), allocated CN 2002-08-01" {
		t.Errorf("evidence %+v", ev)
	}
	if !ev.Seen.Equal(time.Date(2019, 9, 9, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("seen %v, want the file date", ev.Seen)
	}
}

// TestFollowDiscoveredASNs: an ASN another source found (not a seed) leads
// to its holder's other ASNs, with the chain in the evidence.
func TestFollowDiscoveredASNs(t *testing.T) {
	s := mustNew(t, Options{Path: apnicExt})
	facts, err := s.Follow(context.Background(), target(64496), []uint32{64496, 4538})
	if err != nil {
		t.Fatal(err)
	}
	if got := asnSet(facts); !slices.Equal(got, []uint32{3717}) || facts[0].Evidence.Detail != "same holder as AS4538 (opaque-id A91E5D61), allocated CN 2002-08-01" {
		t.Fatalf("followed %v %+v", got, facts)
	}
}

func TestDiscoverExpandsBlocksAndGuardsPooledHolders(t *testing.T) {
	// A91A7381 (JPNIC in the real file) holds 38 ASNs in this excerpt.
	s := mustNew(t, Options{Path: apnicExt})
	facts, err := s.Discover(context.Background(), target(2554))
	if err != nil {
		t.Fatal(err)
	}
	got := asnSet(facts)
	if len(got) != 37 || got[0] != 2497 || got[31] != 2528 || !slices.Contains(got, 4197) || slices.Contains(got, 2554) {
		t.Fatalf("discovered %v: want AS2497-AS2528, 2713, 2907, 2915, 3488, 4197", got)
	}

	small := mustNew(t, Options{Path: apnicExt, MaxHolderASNs: 10})
	facts, err = small.Discover(context.Background(), target(2554))
	if err != nil || len(facts) != 0 {
		t.Fatalf("pooled holder followed: %v %v", facts, err)
	}
	res, err := small.Resolve(context.Background(), target(2554), []uint32{2554})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ASNs) != 1 || !strings.Contains(res.ASNs[0].Evidence.Detail, "held by 38 ASNs") || len(res.Prefixes) != 0 {
		t.Fatalf("resolve of a pooled holder: %+v", res)
	}
}

func TestResolveHolderAddressSpace(t *testing.T) {
	s := mustNew(t, Options{Path: apnicExt})
	res, err := s.Resolve(context.Background(), target(1221), []uint32{1221, 1250, 64512})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.120.0.0/13", "1.128.0.0/11", "2001:208:2000::/35", "2001:208:4000::/34", "2001:208:8000::/33", "2001:208::/35"}
	if got := prefixSet(res.Prefixes); !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, want %v", got, want)
	}
	for _, p := range res.Prefixes {
		if p.Origin != 0 {
			t.Errorf("%s has origin %d: the stats do not say who originates", p.Prefix, p.Origin)
		}
		if p.Prefix.String() == "1.120.0.0/13" && p.Evidence.Detail != "registered to the same holder as AS1221 (opaque-id A916A983), allocated AU 2010-05-18" {
			t.Errorf("detail %q", p.Evidence.Detail)
		}
	}
	if got := asnSet(res.ASNs); !slices.Equal(got, []uint32{1221, 1250}) {
		t.Errorf("registration evidence for %v, want [1221 1250]", got)
	}
	if d := res.ASNs[0].Evidence.Detail; d != "allocated AU 2000-01-31, opaque-id A916A983" {
		t.Errorf("AS1221 detail %q", d)
	}
}

func TestARINExtended(t *testing.T) {
	s := mustNew(t, Options{Path: arinExt})
	res, err := s.Resolve(context.Background(), target(1), []uint32{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"4.0.0.0/9", "4.144.0.0/12", "4.160.0.0/11", "4.192.0.0/10", "8.0.0.0/9", "8.192.0.0/12", "8.224.0.0/11"}
	if got := prefixSet(res.Prefixes); !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, want %v", got, want)
	}
	var as3 string
	for _, f := range res.ASNs {
		if f.ASN == 3 {
			as3 = f.Evidence.Detail
		}
		// The serial is a timestamp: the end date is the data date.
		if !f.Evidence.Seen.Equal(time.Date(2019, 9, 8, 0, 0, 0, 0, time.UTC)) || f.Evidence.Source != "rir:arin" {
			t.Errorf("evidence %+v", f.Evidence)
		}
	}
	if as3 != "assigned US, opaque-id d98c567cda2db06e693f2b574eafe848" {
		t.Errorf("AS3 (date 00000000) detail %q", as3)
	}
	facts, err := s.Discover(context.Background(), target(2))
	if err != nil || !slices.Equal(asnSet(facts), []uint32{34}) {
		t.Fatalf("AS2 holder: %v %v, want [34]", asnSet(facts), err)
	}
}

func TestStandardFileNamesOnly(t *testing.T) {
	s := mustNew(t, Options{Path: apnicStd})
	tg := target(45090, 132203)
	facts, err := s.Discover(context.Background(), tg)
	if err != nil || len(facts) != 0 {
		t.Fatalf("standard file discovered %v %v", facts, err)
	}
	res, err := s.Resolve(context.Background(), tg, []uint32{45090, 132203, 396986})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Prefixes) != 0 {
		t.Errorf("standard file gave prefixes: %v", prefixSet(res.Prefixes))
	}
	got := map[uint32]string{}
	for _, f := range res.ASNs {
		got[f.ASN] = f.Evidence.Detail
	}
	want := map[uint32]string{
		45090:  "allocated CN 2008-02-01 (block AS45056-AS45115)",
		132203: "allocated CN 2012-03-13",
	}
	if len(got) != 2 || got[45090] != want[45090] || got[132203] != want[132203] {
		t.Fatalf("naming evidence %v, want %v", got, want)
	}
}

func TestCover4(t *testing.T) {
	for _, c := range []struct {
		start string
		count uint64
		want  string
	}{
		{"1.0.0.0", 768, "1.0.0.0/23 1.0.2.0/24"},
		{"10.0.0.128", 256, "10.0.0.128/25 10.0.1.0/25"},
		{"103.7.28.0", 1024, "103.7.28.0/22"},
		{"0.0.0.0", 1 << 32, "0.0.0.0/0"},
		{"255.255.255.255", 1, "255.255.255.255/32"},
	} {
		p, err := cover4(netip.MustParseAddr(c.start), c.count)
		if err != nil {
			t.Fatalf("%s+%d: %v", c.start, c.count, err)
		}
		var s []string
		for _, x := range p {
			s = append(s, x.String())
		}
		if got := strings.Join(s, " "); got != c.want {
			t.Errorf("%s+%d = %s, want %s", c.start, c.count, got, c.want)
		}
	}
	if _, err := cover4(netip.MustParseAddr("255.255.255.0"), 512); err == nil {
		t.Error("range past the end of IPv4 accepted")
	}
}

func TestParseErrors(t *testing.T) {
	const v = "2|apnic|20241001|1|19830613|20240930|+1000\n"
	for name, c := range map[string]struct{ in, want string }{
		"html":       {"<html><body>502 Bad Gateway</body></html>\n", `line 1: 1 fields`},
		"empty":      {"", "no version line"},
		"comments":   {"# only\n#comments\n", "no version line"},
		"version":    {"x|apnic|1|1|1|1|1\n", `line 1: version "x" is not a number`},
		"short":      {v + "apnic|CN|asn|1\n", "line 2: record has 4 fields"},
		"type":       {v + "apnic|CN|asx|1|1|20100101|allocated\n", `line 2: unknown type "asx"`},
		"asn":        {v + "apnic|CN|asn|AS1|1|20100101|allocated\n", "line 2: invalid ASN range"},
		"asn-zero":   {v + "apnic|CN|asn|5|0|20100101|allocated\n", "line 2: invalid ASN range"},
		"asn-wrap":   {v + "apnic|CN|asn|4294967295|2|20100101|allocated\n", "line 2: invalid ASN range"},
		"ipv4":       {v + "apnic|CN|ipv4|1.2.3|256|20100101|allocated\n", "line 2: invalid IPv4 range"},
		"ipv4-v6":    {v + "apnic|CN|ipv4|2001:db8::|256|20100101|allocated\n", "line 2: invalid IPv4 range"},
		"ipv4-end":   {v + "apnic|CN|ipv4|255.255.255.0|512|20100101|allocated\n", "line 2: IPv4 range"},
		"ipv6-bits":  {v + "apnic|CN|ipv6|2001:db8::|129|20100101|allocated\n", "line 2: invalid IPv6 block"},
		"ipv6-host":  {v + "apnic|CN|ipv6|2001:db8::1|32|20100101|allocated\n", "line 2: IPv6 block 2001:db8::1/32 has host bits set"},
		"date":       {v + "apnic|CN|asn|1|1|2010-01-01|allocated\n", `line 2: date "2010-01-01" is not YYYYMMDD`},
		"truncated":  {v + "apnic|CN|asn|1|1|20100101|allocated\napnic|CN|ipv4|1.0.0", "line 3: record has 4 fields"},
		"crlf-error": {v + "apnic|CN|asn|1|1|20100101|allocated\r\napnic|CN|asn|x|1|20100101|allocated\r\n", "line 3: invalid ASN range"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	// Reserved/available lines are checked too but dropped; CRLF is fine.
	f, err := Parse([]byte(v + "apnic|*|asn|*|1|summary\r\napnic||ipv6|2001:201::|32||available|\r\napnic|CN|asn|7|1|20100101|allocated|ID1\r\n"))
	if err != nil || len(f.Records) != 1 || f.Records[0].OpaqueID != "ID1" {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestNewFileErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no path or URL accepted")
	}
	if _, err := New(Options{Path: "a", URL: "http://b"}); err == nil {
		t.Error("both path and URL accepted")
	}
	_, err := New(Options{Path: "testdata/missing.txt"})
	if err == nil || !strings.Contains(err.Error(), "rir testdata/missing.txt") {
		t.Errorf("missing file: %v", err)
	}
	_, err = New(Options{Path: "testdata/PROVENANCE.md"})
	if err == nil || !strings.Contains(err.Error(), "rir testdata/PROVENANCE.md: line 3: ") {
		t.Errorf("not a stats file: %v", err)
	}
	_, err = New(Options{Path: apnicExt, Client: &fetch.Client{MaxBytes: 1000}})
	if err == nil || !strings.Contains(err.Error(), "larger than the 1000-byte limit") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestProvenance(t *testing.T) {
	s := mustNew(t, Options{Path: constructed})
	data, _ := os.ReadFile(constructed)
	sum := sha256.Sum256(data)
	p := s.Provenance()
	if len(p) != 1 || p[0].SHA256 != hex.EncodeToString(sum[:]) || p[0].Source != "rir:apnic" || p[0].Input != constructed ||
		!strings.Contains(p[0].Note, "extended") || !strings.Contains(p[0].Note, "serial 20241001") {
		t.Fatalf("provenance %+v", p)
	}
}

// statsServer serves a statistics file the way an RIR FTP/HTTP mirror does,
// recording the User-Agent and the number of requests.
func statsServer(t *testing.T, path string) (*httptest.Server, *atomic.Int32, *atomic.Value) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		ua.Store(r.UserAgent())
		w.Header().Set("Content-Type", "text/plain")
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &ua
}

func TestURLSource(t *testing.T) {
	srv, n, ua := statsServer(t, constructed)
	url := srv.URL + "/stats/apnic/delegated-apnic-extended-latest"
	s := mustNew(t, Options{URL: url})
	if p := s.Provenance(); p != nil {
		t.Errorf("provenance before the first fetch: %+v", p)
	}
	tg := target(138699, 132203, 45090)
	ctx := context.Background()
	if _, err := s.Discover(ctx, tg); err != nil {
		t.Fatal(err)
	}
	res, err := s.Resolve(ctx, tg, []uint32{138699, 132203, 45090})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"103.136.220.0/22", "103.7.28.0/22", "2404:9dc0::/32"}
	if got := prefixSet(res.Prefixes); !slices.Equal(got, want) {
		t.Fatalf("prefixes %v, want %v (AS45090's block is CNNIC's pool, not followed)", got, want)
	}
	if n.Load() != 1 {
		t.Errorf("%d downloads for one run, want 1", n.Load())
	}
	if got, _ := ua.Load().(string); !strings.HasPrefix(got, "asfence") {
		t.Errorf("User-Agent %q", got)
	}
	if p := s.Provenance(); len(p) != 1 || p[0].Input != url || len(p[0].SHA256) != 64 {
		t.Errorf("provenance after fetch: %+v", p)
	}
	if s.Name() != "rir:"+url {
		t.Errorf("name %q", s.Name())
	}
}

func TestURLFailures(t *testing.T) {
	body, _ := os.ReadFile(constructed)
	cases := map[string]struct {
		h      http.HandlerFunc
		client *fetch.Client
		want   string
	}{
		"500": {h: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "backend down", http.StatusInternalServerError)
		}, want: `HTTP 500 Internal Server Error: "backend down"`},
		"404": {h: http.NotFound, want: "not found (HTTP 404)"},
		"429": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		}, want: "rate limited (HTTP 429), retry after 120"},
		"garbage": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<!DOCTYPE html>\n<title>Maintenance</title>\n"))
		}, want: "line 1: 1 fields"},
		"oversized": {h: func(w http.ResponseWriter, r *http.Request) { w.Write(body) },
			client: &fetch.Client{MaxBytes: 4096}, want: "larger than the 4096-byte limit"},
		"slow": {h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			client: &fetch.Client{Timeout: 300 * time.Millisecond}, want: "no complete answer"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			s := mustNew(t, Options{URL: srv.URL + "/delegated", Client: c.client})
			_, err := s.Discover(context.Background(), target(132203))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "rir "+srv.URL+"/delegated: ") {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestEngineIncomplete: a dead RIR mirror is listed as incomplete and the
// other sources' facts are still in the snapshot.
func TestEngineIncomplete(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	dead := mustNew(t, Options{URL: srv.URL + "/delegated-apnic-extended-latest"})
	good := mustNew(t, Options{Path: constructed})
	ipv, err := files.NewIPverse(files.Options{Path: "testdata/AS132203.aggregated.024f99aa.json"})
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	eng := &asn.Engine{Sources: []asn.Source{dead, good, ipv}, Now: func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }}
	snap, err := eng.Run(context.Background(), []asn.Target{tencent})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Failed(dead.Name(), "tencent") {
		t.Fatalf("dead mirror not incomplete: %+v", snap.Incomplete)
	}
	if !strings.Contains(snap.Incomplete[0].Error, "HTTP 503") {
		t.Errorf("incomplete error %q", snap.Incomplete[0].Error)
	}
	tr := snap.Target("tencent")
	var rirPrefix, ipversePrefix bool
	for _, p := range tr.Prefixes {
		for _, ev := range p.Evidence {
			if ev.Source == "rir:apnic" && p.Prefix == netip.MustParsePrefix("103.7.28.0/22") {
				rirPrefix = true
			}
			if ev.Source == "file:ipverse" {
				ipversePrefix = true
			}
		}
	}
	if !rirPrefix || !ipversePrefix {
		t.Fatalf("other sources' facts missing: rir %v ipverse %v", rirPrefix, ipversePrefix)
	}
}
