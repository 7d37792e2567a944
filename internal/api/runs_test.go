package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// storeBackend serves runs from a real store; the rest of the daemon is
// not needed for the run endpoints.
type storeBackend struct {
	*store.Store
	// failAfter, when > 0, makes RunPrefixes and RunDiff fail after that
	// many chunks (a store read failing half-way through an answer).
	failAfter int
}

func (b *storeBackend) Ready() bool                                         { return true }
func (b *storeBackend) Status(context.Context) (*Status, error)             { return nil, ErrNotReady }
func (b *storeBackend) Applied() *policy.Intent                             { return nil }
func (b *storeBackend) Peers(context.Context) ([]bgp.PeerStatus, error)     { return nil, nil }
func (b *storeBackend) Trigger(context.Context, string) (*store.Run, error) { return nil, ErrBusy }
func (b *storeBackend) Approve(context.Context, uint64, string) (*store.Run, error) {
	return nil, ErrBusy
}
func (b *storeBackend) Reject(context.Context, uint64, string) (*store.Run, error) {
	return nil, ErrBusy
}

var errDisk = errors.New("read error (test)")

func (b *storeBackend) RunPrefixes(id uint64, q store.PrefixQuery, fn func([]asn.Prefix) error) (int, error) {
	n := 0
	return b.Store.RunPrefixes(id, q, func(ps []asn.Prefix) error {
		if n++; b.failAfter > 0 && n > b.failAfter {
			return errDisk
		}
		return fn(ps)
	})
}

func (b *storeBackend) RunDiff(id uint64, file string, offset, limit int, fn func(string) error) (int, error) {
	n := 0
	return b.Store.RunDiff(id, file, offset, limit, func(text string) error {
		if n++; b.failAfter > 0 && n > b.failAfter {
			return errDisk
		}
		return fn(text)
	})
}

const (
	bigAdded   = 200_000
	bigRemoved = 20_000
	diffLines  = 300_000
)

// bigRun stores run 1 adding bigAdded IPv4 prefixes to target "big" and
// removing bigRemoved IPv6 ones, each with evidence, and a vendor-file
// diff of diffLines lines; it returns the diff.
func bigRun(t testing.TB, s *store.Store) string {
	t.Helper()
	seen := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	tc := policy.TargetChange{Target: "big", Before: bigRemoved, After: bigAdded, AddedASNs: []uint32{64500}, RemovedASNs: []uint32{64501}}
	for i := range bigAdded {
		tc.Added = append(tc.Added, asn.Prefix{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			Origins: []uint32{64500}, Evidence: []asn.Evidence{{Source: "irr:TEST", Detail: fmt.Sprintf("route 20.%d.%d.%d/32 origin AS64500", byte(i>>16), byte(i>>8), byte(i)), Seen: seen}}})
	}
	for i := range bigRemoved {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i >> 16), byte(i >> 8), byte(i)})
		tc.Removed = append(tc.Removed, asn.Prefix{Prefix: netip.PrefixFrom(a, 64), Origins: []uint32{64501},
			Evidence: []asn.Evidence{{Source: "rir:apnic", Detail: "same holder", Seen: seen}}})
	}
	var diff strings.Builder
	diff.WriteString("--- a/asfence-junos.conf\n+++ b/asfence-junos.conf\n")
	for i := range diffLines - 2 {
		fmt.Fprintf(&diff, "+                route-filter 20.%d.%d.%d/32 orlonger; # ‘evidence’ %d\n", byte(i>>16), byte(i>>8), byte(i), i)
	}
	ch := policy.Change{Targets: []policy.TargetChange{tc, {Target: "small", Before: 1, After: 1}}}
	r, err := s.BeginRun("api", seen)
	if err != nil {
		t.Fatal(err)
	}
	r.Outcome, r.End, r.Diff = store.Applied, seen, store.Summarize(ch)
	if err := s.PutRun(r, &store.Detail{Change: ch, OutputDiffs: []store.OutputDiff{{File: "asfence-junos.conf", Diff: diff.String()}}}); err != nil {
		t.Fatal(err)
	}
	return diff.String()
}

func serve(t testing.TB, b Backend) *Client {
	t.Helper()
	srv, err := New(b, Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &Client{Base: ts.URL}
}

var (
	bigOnce  sync.Once
	bigStore *store.Store
	bigDiff  string
	bigDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bigStore != nil {
		bigStore.Close()
	}
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// sharedBigStore is the store with bigRun, built once for the tests.
func sharedBigStore(t *testing.T) (*store.Store, string) {
	bigOnce.Do(func() {
		var err error
		if bigDir, err = os.MkdirTemp("", "asfence-api-test-"); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(bigDir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		bigStore, bigDiff = s, bigRun(t, s)
	})
	if bigStore == nil {
		t.Fatal("no store")
	}
	return bigStore, bigDiff
}

// TestRunDetailPagesALargeChange: a run adding 200k prefixes is read as a
// summary, then page by page (the client pages through all of it, in
// order, with evidence), and its vendor-file diff streams whole; asking
// for the whole change at once is refused naming the size and the limit.
func TestRunDetailPagesALargeChange(t *testing.T) {
	s, diff := sharedBigStore(t)
	c := serve(t, &storeBackend{Store: s})
	ctx := context.Background()
	sum, err := c.RunSummary(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Format != RunFormat || sum.Run.ID != 1 || sum.Change == nil || len(sum.Change.Targets) != 2 || len(sum.Change.Diffs) != 1 {
		t.Fatalf("summary = %+v", sum)
	}
	big := sum.Change.Targets[0]
	if big.Target != "big" || big.Added != bigAdded || big.Removed != bigRemoved || big.AddedHref != "/api/v1/runs/1/prefixes?change=added&target=big" {
		t.Fatalf("big target = %+v", big)
	}
	if d := sum.Change.Diffs[0]; d.File != "asfence-junos.conf" || d.Lines != diffLines || d.Bytes != len(diff) || d.Href != "/api/v1/runs/1/diffs/asfence-junos.conf" {
		t.Fatalf("diff = %+v", d)
	}
	n, pages := 0, 0
	total, err := c.RunPrefixes(ctx, 1, store.PrefixQuery{Target: "big", Change: store.ChangeAdded, Limit: -1}, func(ps []asn.Prefix) error {
		pages++
		for _, p := range ps {
			want := netip.PrefixFrom(netip.AddrFrom4([4]byte{20, byte(n >> 16), byte(n >> 8), byte(n)}), 32)
			if p.Prefix != want || len(p.Evidence) != 1 || p.Evidence[0].Source != "irr:TEST" {
				return fmt.Errorf("prefix %d = %+v, want %s", n, p, want)
			}
			n++
		}
		return nil
	})
	if err != nil || total != bigAdded || n != bigAdded || pages != bigAdded/PrefixPageSize {
		t.Fatalf("paged %d of %d in %d pages: %v", n, total, pages, err)
	}
	// A page in the middle, across the store's chunks.
	var mid []asn.Prefix
	if _, err := c.RunPrefixes(ctx, 1, store.PrefixQuery{Target: "big", Change: store.ChangeRemoved, Offset: 12_345, Limit: 7}, func(ps []asn.Prefix) error {
		mid = append(mid, ps...)
		return nil
	}); err != nil || len(mid) != 7 || mid[0].Prefix != netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 12_345 >> 8, 12_345 & 0xff}), 64) {
		t.Fatalf("middle page = %v, %v", mid, err)
	}
	var b strings.Builder
	if err := c.RunDiff(ctx, 1, "asfence-junos.conf", &b); err != nil || b.String() != diff {
		t.Fatalf("diff: %d of %d bytes, %v", b.Len(), len(diff), err)
	}
	var tl *store.TooLargeError
	if _, _, err := s.Run(1); !errors.As(err, &tl) || tl.Size != bigAdded+bigRemoved || !strings.Contains(err.Error(), "page through it") {
		t.Fatalf("whole read from the store: %v", err)
	}
	if _, _, err := c.Run(ctx, 1); !errors.As(err, &tl) || !strings.Contains(err.Error(), fmt.Sprint(bigAdded+bigRemoved)) || !strings.Contains(err.Error(), fmt.Sprint(store.MaxWholeDetail)) {
		t.Fatalf("whole read: %v", err)
	}
	if _, err := c.RunPrefixes(ctx, 1, store.PrefixQuery{Target: "nope", Change: store.ChangeAdded, Limit: 1}, func([]asn.Prefix) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown target: %v", err)
	}
	if err := c.RunDiff(ctx, 1, "asfence-bird.conf", io.Discard); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown file: %v", err)
	}
}

// TestRunDetailMemoryPerRequest: four clients reading the whole 200k
// change page by page at the largest page size, and the diff, at once,
// add a bounded amount to the daemon's heap: a few pages' worth, not the
// change (the change decoded is several times the bound).
func TestRunDetailMemoryPerRequest(t *testing.T) {
	s, _ := sharedBigStore(t)
	c := serve(t, &storeBackend{Store: s})
	hc := &http.Client{}
	get := func(path string) error {
		resp, err := hc.Get(c.Base + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	// Collect often, so that the peak is what the requests hold rather
	// than garbage waiting for the next cycle.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := 0; off < bigAdded; off += MaxPrefixLimit {
				if err := get(PrefixesHref(1, "big", store.ChangeAdded, off, MaxPrefixLimit)); err != nil {
					errs <- err
					return
				}
			}
			if err := get(DiffHref(1, "asfence-junos.conf")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	// What one request would hold if it read the added list whole (as the
	// answer of format 1 did, before building its JSON body): the bound
	// is below it, so a server holding a change per request fails here.
	var all []asn.Prefix
	if _, err := s.RunPrefixes(1, store.PrefixQuery{Target: "big", Change: store.ChangeAdded, Limit: bigAdded}, func(ps []asn.Prefix) error {
		all = append(all, ps...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	whole := int64(held.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(all)
	const bound = 32 << 20
	t.Logf("heap %d MiB before, peak growth %.1f MiB with 4 clients (bound %d MiB); the added list read whole holds %.1f MiB",
		before.HeapAlloc>>20, float64(growth)/(1<<20), bound>>20, float64(whole)/(1<<20))
	if whole < bound {
		t.Fatalf("the bound (%d MiB) does not tell paging from a whole read (%d MiB)", bound>>20, whole>>20)
	}
	if growth > bound {
		t.Fatalf("4 paging clients grew the heap by %d MiB, more than %d MiB", growth>>20, bound>>20)
	}
}

// TestClientNamesTruncatedAndOversizedAnswers: an answer larger than the
// client's limit is refused naming the limit, and an answer the daemon
// cuts half-way (a store read failing after the status was sent) is an
// error saying it was cut off, never a short list or "unexpected end of
// JSON input".
func TestClientNamesTruncatedAndOversizedAnswers(t *testing.T) {
	s, _ := sharedBigStore(t)
	ctx := context.Background()
	small := serve(t, &storeBackend{Store: s})
	small.MaxAnswer = 64 << 10
	var tl *TooLargeError
	_, err := small.RunPrefixes(ctx, 1, store.PrefixQuery{Target: "big", Change: store.ChangeAdded, Limit: -1}, func([]asn.Prefix) error { return nil })
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("oversized page: %v", err)
	}
	failing := serve(t, &storeBackend{Store: s, failAfter: 1})
	var tr *TruncatedError
	calls := 0
	_, err = failing.RunPrefixes(ctx, 1, store.PrefixQuery{Target: "big", Change: store.ChangeAdded, Limit: -1}, func([]asn.Prefix) error {
		calls++
		return nil
	})
	if !errors.As(err, &tr) || calls != 0 || !strings.Contains(err.Error(), "cut off after") {
		t.Fatalf("page cut half-way: %d pages taken, %v", calls, err)
	}
	var b strings.Builder
	err = failing.RunDiff(ctx, 1, "asfence-junos.conf", &b)
	if !errors.As(err, &tr) || !strings.Contains(err.Error(), "cut off after") {
		t.Fatalf("diff cut half-way: %v", err)
	}
	// A summary cut short by the network (Content-Length says more).
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"format": 2, "run": {"id": 1`))
	}))
	defer cut.Close()
	_, err = (&Client{Base: cut.URL}).RunSummary(ctx, 1)
	if !errors.As(err, &tr) || !strings.Contains(err.Error(), "cut off after 29 bytes") {
		t.Fatalf("summary cut short: %v", err)
	}
	// A whole HTTP answer whose JSON stops half-way (a proxy, a daemon
	// that closed cleanly mid-answer).
	half := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"format": 2, "run": {"id": 1, "outc`))
	}))
	defer half.Close()
	_, err = (&Client{Base: half.URL}).RunSummary(ctx, 1)
	if !errors.As(err, &tr) || !strings.Contains(err.Error(), "cut off after 36 bytes") {
		t.Fatalf("summary whose JSON stops: %v", err)
	}
	// An answer announced larger than the limit is not read at all.
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(int64(DefaultMaxAnswer)+1))
		w.WriteHeader(http.StatusOK)
	}))
	defer huge.Close()
	_, err = (&Client{Base: huge.URL}).RunSummary(ctx, 1)
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), fmt.Sprint(DefaultMaxAnswer)) {
		t.Fatalf("announced oversized answer: %v", err)
	}
}
