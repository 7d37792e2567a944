package config

import (
	"strings"
	"testing"
	"time"
)

// The bmp: and watch: keys: defaults, and every bad value named with its
// line and field.
func TestWatchKeys(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte("bmp:\n  listen: 127.0.0.1:11019\n  routers: [192.0.2.1, \"::ffff:192.0.2.2\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.WatchOn() || len(cfg.BMP.RouterAddrs()) != 2 || cfg.BMP.RouterAddrs()[1].String() != "192.0.2.2" {
		t.Fatalf("bmp %+v", cfg.BMP)
	}
	if m, w, s := cfg.Watch.Values(); m != 100 || w != 10*time.Minute || s != 1 {
		t.Fatalf("watch defaults %d %s %d", m, w, s)
	}
	cfg, err = Parse("w.yaml", []byte("bgp:\n  asn: 64512\n  router_id: 192.0.2.10\n  neighbors:\n    - {address: 192.0.2.30, asn: 64512, feed: true}\nwatch:\n  max_additions: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m, _, _ := cfg.Watch.Values(); !cfg.WatchOn() || m != 0 {
		t.Fatalf("feed: watch on %v, max_additions %d", cfg.WatchOn(), m)
	}
	if cfg, _ := Parse("w.yaml", nil); cfg.WatchOn() {
		t.Error("the watch is on without bmp or a feed")
	}
	doc := strings.Join([]string{
		"bmp:",
		"  listen: 127.0.0.1",
		"  routers: [192.0.2.1, nonsense, 192.0.2.1]",
		"  max_routes_per_router: -1",
		"watch:",
		"  max_additions: -5",
		"  window: 10ms",
		"  min_sources: -1",
		"  max_addition: 3",
	}, "\n")
	_, err = Parse("w.yaml", []byte(doc))
	want := []string{
		`w.yaml:2: bmp.listen: "127.0.0.1": want address:port`,
		`w.yaml:3: bmp.routers[1]: invalid address "nonsense"`,
		`w.yaml:3: bmp.routers[2]: duplicate router 192.0.2.1`,
		`w.yaml:4: bmp.max_routes_per_router: must not be negative`,
		`w.yaml:6: watch.max_additions: must not be negative`,
		`w.yaml:7: watch.window: must be at least 1s`,
		`w.yaml:8: watch.min_sources: must not be negative`,
		`w.yaml:9: watch.max_addition:`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}
