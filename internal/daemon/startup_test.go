package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
)

// poller asks the API for its status and peers as fast as it answers,
// from before the daemon starts until stop, and keeps what it saw.
type poller struct {
	base   string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	statuses []api.Status
	peers    int
	bad      []string
}

func startPoller(base string) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{base: base, cancel: cancel, done: make(chan struct{})}
	get := func(path string) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			code, b, err := get("/api/v1/status")
			if err != nil {
				continue // not listening yet, or stopped
			}
			var st api.Status
			p.mu.Lock()
			if jerr := json.Unmarshal(b, &st); code != http.StatusOK || jerr != nil {
				p.bad = append(p.bad, fmt.Sprintf("status: %d %.200s", code, b))
			} else {
				p.statuses = append(p.statuses, st)
			}
			p.mu.Unlock()
			code, b, err = get("/api/v1/peers")
			if err != nil {
				continue
			}
			p.mu.Lock()
			if code != http.StatusOK || !strings.Contains(string(b), `"peers"`) {
				p.bad = append(p.bad, fmt.Sprintf("peers: %d %.200s", code, b))
			} else {
				p.peers++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// answered waits until the poller has at least n status answers.
func (p *poller) answered(t *testing.T, n int) {
	t.Helper()
	err := lab.Eventually(context.Background(), testDeadline, func(context.Context) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.statuses) < n || p.peers < n {
			return fmt.Errorf("%d status and %d peers answers", len(p.statuses), p.peers)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (p *poller) stop(t *testing.T) []api.Status {
	t.Helper()
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bad) > 0 {
		t.Fatalf("bad answers: %q", p.bad)
	}
	return p.statuses
}

// The API is served only once the state it shows exists: a client asking
// for the status from the first moment never sees a daemon half set up,
// and (under -race) no handler reads what the start-up is still writing.
// The speaker has a bgp: block whose neighbor never answers.
func TestStatusDuringStartup(t *testing.T) {
	t.Parallel()
	loop := netip.MustParseAddr("127.0.0.1")
	apiPort, bgpPort := lab.FreePort(t, loop), lab.FreePort(t, loop)
	h := newHarness(t, fmt.Sprintf(`bgp:
  asn: 64512
  router_id: 192.0.2.10
  neighbors:
    - address: 127.0.0.1
      port: %d
      asn: 64512
      connect_retry: 1
`, bgpPort))
	cfg, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfgPath, []byte(strings.Replace(string(cfg), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", apiPort), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)

	// First start: no applied set yet (the speaker waits for run 1).
	p := startPoller(base)
	h.start()
	p.answered(t, 3)
	first := p.stop(t)
	h.wait(1)
	for _, st := range first {
		if st.NextRun.IsZero() || st.Peers == nil || st.Peers.Total != 1 {
			t.Fatalf("first start: status served before the daemon was set up: next_run %v, peers %+v", st.NextRun, st.Peers)
		}
	}

	// Restart: the speaker resumes run 1's set before anything is served.
	h.stop()
	p = startPoller(base)
	h.start()
	p.answered(t, 3)
	second := p.stop(t)
	for _, st := range second {
		if !st.Ready || st.Applied == nil || st.Applied.RunID != 1 || st.NextRun.IsZero() || st.Peers == nil || st.Peers.Total != 1 {
			t.Fatalf("restart: status served before the applied set was announced: ready %v, applied %+v, next_run %v, peers %+v",
				st.Ready, st.Applied, st.NextRun, st.Peers)
		}
	}
}
