package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
)

// fetchTimed GETs url and returns the server's time to first byte (from
// the request written to the first byte of the answer) and the body size.
func fetchTimed(tb testing.TB, hc *http.Client, url string) (time.Duration, int) {
	tb.Helper()
	var wrote, first time.Time
	trace := &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return first.Sub(wrote), int(n)
}

// medianTimed is the median time to first byte of n GETs and the size.
func medianTimed(tb testing.TB, hc *http.Client, url string, n int) (time.Duration, int) {
	var ds []time.Duration
	size := 0
	for range n {
		d, s := fetchTimed(tb, hc, url)
		ds = append(ds, d)
		size = s
	}
	slices.Sort(ds)
	return ds[len(ds)/2], size
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// peakRSS is a process's peak resident set size in MiB (VmHWM).
func peakRSS(tb testing.TB, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	tb.Fatal("no VmHWM")
	return 0
}

// BenchmarkConsole100k: the review console of the real daemon binary:
// server time to first byte and page weight of the overview and of the
// first page of a run that adds 100k prefixes (held, then approved, when
// its vendor-file diffs are shown too), next to the JSON API's answers for
// the same data (the run's summary and a page of 100 prefixes), and the
// daemon's peak RSS.
func BenchmarkConsole100k(b *testing.B) {
	lab.Short(b)
	bin := buildAsfence(b)
	dir := b.TempDir()
	addr := lab.Loopback(b)
	port := lab.FreePort(b, addr)
	snapPath := filepath.Join(dir, "snapshot.json")
	base, err := asn.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	writeSnap := func(s *asn.Snapshot) {
		f, err := os.Create(snapPath + ".tmp")
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Encode(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(snapPath+".tmp", snapPath); err != nil {
			b.Fatal(err)
		}
	}
	writeSnap(base)
	cfgPath := filepath.Join(dir, "asfence.yaml")
	cfg := fmt.Sprintf("schedule: \"@every 24h\"\nstate_dir: %s\noutput_dir: %s\noutputs:\n  vendors: [junos, cisco-ios, bird, nftables]\napi:\n  listen: %s:%d\nlog:\n  format: json\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "out"), addr, port)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	p := startProc(b, bin, filepath.Join(dir, "asfence.log"), "run", "--config", cfgPath, "--snapshot", snapPath)
	client := &api.Client{Base: fmt.Sprintf("http://%s:%d", addr, port)}
	waitRun := func(id uint64) *store.Run {
		var run *store.Run
		err := lab.Eventually(context.Background(), 5*time.Minute, func(ctx context.Context) error {
			sum, err := client.RunSummary(ctx, id)
			if err != nil {
				return err
			}
			r := sum.Run
			if r.Outcome == store.Running {
				return fmt.Errorf("run %d running", id)
			}
			run = r
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return run
	}
	if r := waitRun(1); r.Outcome != store.Applied {
		b.Fatalf("first run: %+v", r)
	}
	// The registries now name 100k more prefixes for Tencent.
	big, err := asn.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	tg := big.Target("tencent")
	seen := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, pf := range benchPrefixes(0, benchRoutes) {
		tg.Prefixes = append(tg.Prefixes, asn.Prefix{Prefix: pf, Origins: []uint32{45090},
			Evidence: []asn.Evidence{{Source: "file:bench", Detail: "announced by AS45090 (bench data)", Seen: seen}}})
	}
	writeSnap(big)
	started, err := client.Trigger(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	held := waitRun(started.ID)
	if held.Outcome != store.Held || held.Diff.Added < benchRoutes {
		b.Fatalf("run %d: %s, %d added", held.ID, held.Outcome, held.Diff.Added)
	}
	hc := &http.Client{Timeout: 5 * time.Minute}
	runURL := fmt.Sprintf("%s/runs/%d", client.Base, held.ID)
	apiRunURL := fmt.Sprintf("%s/api/v1/runs/%d", client.Base, held.ID)
	apiPageURL := client.Base + api.PrefixesHref(held.ID, "tencent", store.ChangeAdded, 0, 100)
	b.ResetTimer()
	for i := range b.N {
		ov, ovSize := medianTimed(b, hc, client.Base+"/", 5)
		st, stSize := medianTimed(b, hc, client.Base+"/api/v1/status", 5)
		cold, _ := fetchTimed(b, hc, runURL) // the store's pages not in the page cache yet
		warm, runSize := medianTimed(b, hc, runURL, 5)
		last, lastSize := medianTimed(b, hc, fmt.Sprintf("%s/runs/%d/changes?target=tencent&kind=added&offset=%d", client.Base, held.ID, benchRoutes-100), 5)
		apiRun, apiRunSize := medianTimed(b, hc, apiRunURL, 5)
		apiPage, apiPageSize := medianTimed(b, hc, apiPageURL, 5)
		if i == 0 {
			if _, err := client.Approve(context.Background(), held.ID, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		acold, _ := fetchTimed(b, hc, runURL)
		awarm, aSize := medianTimed(b, hc, runURL, 5)
		b.ReportMetric(ms(ov), "overview-ttfb-ms")
		b.ReportMetric(float64(ovSize)/1024, "overview-KB")
		b.ReportMetric(ms(st), "status-api-ttfb-ms")
		b.ReportMetric(float64(stSize)/1024, "status-api-KB")
		b.ReportMetric(ms(cold), "run100k-first-ttfb-ms")
		b.ReportMetric(ms(warm), "run100k-ttfb-ms")
		b.ReportMetric(float64(runSize)/1024, "run100k-KB")
		b.ReportMetric(ms(last), "run100k-lastpage-ttfb-ms")
		b.ReportMetric(float64(lastSize)/1024, "run100k-lastpage-KB")
		b.ReportMetric(ms(apiRun), "run100k-api-ttfb-ms")
		b.ReportMetric(float64(apiRunSize)/1024, "run100k-api-KB")
		b.ReportMetric(ms(apiPage), "run100k-api-page-ttfb-ms")
		b.ReportMetric(float64(apiPageSize)/1024, "run100k-api-page-KB")
		b.ReportMetric(ms(acold), "approved100k-first-ttfb-ms")
		b.ReportMetric(ms(awarm), "approved100k-ttfb-ms")
		b.ReportMetric(float64(aSize)/1024, "approved100k-KB")
		b.ReportMetric(peakRSS(b, p.cmd.Process.Pid), "daemon-peak-rss-MB")
	}
}
