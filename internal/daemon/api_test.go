package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/internal/syncbuf"
)

// do sends a request and returns the status and body.
func (h *harness) do(method, path, token, body string) (int, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.client.Base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPIEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.start()
	h.wait(1)
	before := h.prefixCount("bytedance")
	writeSnapshot(t, h.snap, halve(embedded(t), "bytedance"))
	held := h.trigger()
	if held.Outcome != store.Held {
		t.Fatalf("run 2 = %+v", held)
	}
	cases := []struct {
		method, path, body string
		code               int
		want               []string // substrings of the body
	}{
		{"GET", "/healthz", "", 200, []string{`"status": "ok"`}},
		{"GET", "/readyz", "", 200, []string{`"ready"`}},
		{"GET", "/metrics", "", 200, []string{"asfence_runs_total", "asfence_prefixes{family=\"ipv4\",target=\"tencent\"}", "go_goroutines"}},
		{"GET", "/api/v1/status", "", 200, []string{`"ready": true`, `"held": [`, `"run_id": 1`}},
		{"GET", "/api/v1/targets", "", 200, []string{`"name": "bytedance"`, `"name": "tencent"`, `"ipv4": 3568`, `45090`}},
		{"GET", "/api/v1/prefixes?target=tencent&family=ipv6", "", 200, []string{`"count": 179`, `"prefix": "2402:4e00::/32"`, `"evidence"`}},
		{"GET", "/api/v1/prefixes", "", 200, []string{`"count": 5118`}},
		{"GET", "/api/v1/runs", "", 200, []string{`"id": 2`, `"outcome": "held"`, `"id": 1`}},
		{"GET", "/api/v1/runs?outcome=held&limit=1", "", 200, []string{`"id": 2`}},
		{"GET", "/api/v1/runs/2", "", 200, []string{`"format": 2`, `"guard": [`, `"removed": `, `"removed_href": "/api/v1/runs/2/prefixes?change=removed\u0026target=bytedance"`, `"diffs": []`}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=removed&limit=5", "", 200, []string{`"change":"removed"`, `"limit":5`, `"next":"/api/v1/runs/2/prefixes?change=removed\u0026limit=5\u0026offset=5\u0026target=bytedance"`, `"evidence":[`}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=removed&limit=999999", "", 200, []string{`"limit":10000`}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=added", "", 200, []string{`"total":0,"prefixes":[]}`}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=both", "", 400, []string{"want added or removed"}},
		{"GET", "/api/v1/runs/2/prefixes?change=added", "", 400, []string{"target: required"}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=added&limit=0", "", 400, []string{"limit"}},
		{"GET", "/api/v1/runs/2/prefixes?target=bytedance&change=added&offset=-3", "", 400, []string{"offset"}},
		{"GET", "/api/v1/runs/2/prefixes?target=nosuch&change=added", "", 404, []string{`no target \"nosuch\"`}},
		{"GET", "/api/v1/runs/99999/prefixes?target=bytedance&change=added", "", 404, []string{"not found"}},
		{"GET", "/api/v1/runs/2/diffs/asfence-junos.conf", "", 404, []string{"recorded no diff"}},
		{"GET", "/api/v1/peers", "", 200, []string{`"peers": []`}},
		// Bad input: 4xx, JSON error, nothing changes.
		{"GET", "/api/v1/prefixes?target=nosuch", "", 404, []string{`"error"`, "nosuch"}},
		{"GET", "/api/v1/prefixes?family=ipv5", "", 400, []string{"ipv5"}},
		{"GET", "/api/v1/prefixes?tagret=tencent", "", 400, []string{"unknown parameter"}},
		{"GET", "/api/v1/runs?limit=0", "", 400, []string{"limit"}},
		{"GET", "/api/v1/runs?limit=abc", "", 400, []string{"limit"}},
		{"GET", "/api/v1/runs?before=-1", "", 400, []string{"before"}},
		{"GET", "/api/v1/runs?outcome=exploded", "", 400, []string{"outcome"}},
		{"GET", "/api/v1/runs/abc", "", 400, []string{"run id"}},
		{"GET", "/api/v1/runs/0", "", 400, []string{"run id"}},
		{"GET", "/api/v1/runs/99999", "", 404, []string{"not found"}},
		{"POST", "/api/v1/runs/1/approve", "", 409, []string{"not held"}},
		{"POST", "/api/v1/runs/99999/approve", "", 404, []string{"not found"}},
		{"POST", "/api/v1/runs/x/reject", "", 400, []string{"run id"}},
		{"POST", "/api/v1/runs/2/approve", `{"by": `, 400, []string{"body"}},
		{"POST", "/api/v1/runs/2/reject", `{"who": "me"}`, 400, []string{"unknown field"}},
		{"POST", "/api/v1/runs/2/approve", `{"by": "` + strings.Repeat("x", 5000) + `"}`, 413, []string{"4096"}},
		{"DELETE", "/api/v1/runs/2", "", 405, []string{"not allowed"}},
		{"GET", "/api/v1/runs/2/approve", "", 405, []string{"not allowed"}},
		{"PUT", "/api/v1/status", "", 405, []string{"not allowed"}},
		{"GET", "/api/v2/everything", "", 404, []string{"no such endpoint"}},
	}
	for _, c := range cases {
		code, body := h.do(c.method, c.path, "", c.body)
		if code != c.code {
			t.Errorf("%s %s: %d, want %d: %.300s", c.method, c.path, code, c.code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s %s: body lacks %q: %.500s", c.method, c.path, w, body)
			}
		}
	}
	// None of the bad requests changed anything: run 2 still waits, the
	// applied set is run 1's, and no run was added.
	rs, _ := h.d.Runs(store.ListOptions{})
	if len(rs) != 2 || rs[0].Decision != nil {
		t.Fatalf("runs after bad requests: %+v", rs[0])
	}
	if got := h.prefixCount("bytedance"); got != before {
		t.Fatalf("applied set changed: %d -> %d bytedance prefixes", before, got)
	}
	// Readiness before the announce: a daemon that is not ready says so.
	h.d.ready.Store(false)
	if code, body := h.do("GET", "/readyz", "", ""); code != 503 || !strings.Contains(body, "not ready") {
		t.Fatalf("readyz while not ready: %d %s", code, body)
	}
	h.d.ready.Store(true)
	// POST /api/v1/runs triggers a run.
	code, body := h.do("POST", "/api/v1/runs", "", "")
	if code != 202 || !strings.Contains(body, `"id": 3`) {
		t.Fatalf("trigger: %d %s", code, body)
	}
	h.wait(3)
}

func TestAPITokenRequiredForMutations(t *testing.T) {
	t.Parallel()
	tokFile := filepath.Join(t.TempDir(), "token")
	const token = "s3cret-token-0123456789"
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	h := newHarness(t, "")
	cfg, _ := os.ReadFile(h.cfgPath)
	os.WriteFile(h.cfgPath, []byte(strings.Replace(string(cfg), "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  token_file: "+tokFile+"\n", 1)), 0o644)
	h.start()
	h.wait(1)
	writeSnapshot(t, h.snap, halve(embedded(t), "tencent"))
	h.client.Token = token
	held := h.trigger()
	h.client.Token = ""
	for _, c := range []struct{ path, token string }{
		{"/api/v1/runs", ""},
		{"/api/v1/runs", "wrong-token-0123456789"},
		{"/api/v1/runs/2/approve", ""},
		{"/api/v1/runs/2/reject", token + "x"},
	} {
		code, body := h.do("POST", c.path, c.token, "")
		if code != 401 || !strings.Contains(body, "token") {
			t.Errorf("POST %s with %q: %d %s", c.path, c.token, code, body)
		}
	}
	// Reads need no token.
	if code, _ := h.do("GET", "/api/v1/runs/2", "", ""); code != 200 {
		t.Fatalf("GET without token: %d", code)
	}
	if rs, _ := h.d.Runs(store.ListOptions{}); len(rs) != 2 || rs[0].Decision != nil {
		t.Fatal("a refused request changed state")
	}
	h.client.Token = token
	if r, err := h.client.Reject(context.Background(), held.ID, "t"); err != nil || r.Decision.Action != store.Rejected {
		t.Fatalf("reject with token: %v", err)
	}
}

func TestAPIRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Parallel()
	// The config loader refuses it with file:line; the server refuses it too.
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("state_dir: "+dir+"\napi:\n  listen: 0.0.0.0:9179\n"), 0o644)
	_, err := config.Load(path)
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "c.yaml:3: api.listen") {
		t.Fatalf("config: %v", err)
	}
	if _, err := api.New(nil, api.Options{Listen: "0.0.0.0:9179"}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("api.New: %v", err)
	}
	if _, err := api.New(nil, api.Options{Listen: "[::1]:9179"}); err != nil {
		t.Fatalf("api.New on ::1: %v", err)
	}
}

// The API's connection cap leaves the open-file limit room for BGP, the
// store and registries.
func TestAPIConnectionCapFitsTheOpenFileLimit(t *testing.T) {
	t.Parallel()
	log := logrus.New()
	logs := &syncbuf.Buffer{}
	log.SetOutput(logs)
	cfg := &config.Config{BGP: &bgp.Config{Neighbors: make([]bgp.NeighborConfig, 3)}}
	for _, c := range []struct {
		set    int
		nofile uint64
		want   int
	}{
		{0, 0, api.DefaultMaxConnections},
		{0, 1 << 20, api.DefaultMaxConnections},
		{1000, 1 << 20, 1000},
		{0, 1024, api.DefaultMaxConnections},
		{0, 256, 256 - fdReserve - 6},
		{1000, 1024, 1024 - fdReserve - 6},
		{0, 64, 8},
	} {
		cfg.API.MaxConnections = c.set
		if got := apiLimits(cfg, c.nofile, logrus.NewEntry(log)).MaxConnections; got != c.want {
			t.Errorf("max_connections %d, open-file limit %d: cap %d, want %d", c.set, c.nofile, got, c.want)
		}
	}
	if !strings.Contains(logs.String(), "api.max_connections 1000 lowered to 890") {
		t.Errorf("the log does not say the cap was lowered:\n%s", logs)
	}
}
