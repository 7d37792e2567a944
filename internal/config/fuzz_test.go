package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asfence/asfence/bgp"
)

// FuzzParse: no input makes the loader panic; an invalid file is a
// *Error whose every line names the file, and a valid one holds only
// values the daemon can use (a schedule that parses, guard ratios in
// range, at least one target, BGP timers a peer accepts).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "asfence.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"schedule: \"CRON_TZ=Europe/Berlin 0 3 * * *\"\njitter: 5m\n",
		"guard:\n  max_withdraw_ratio: 0.2\n  max_add_ratio: 3\n  max_withdraw: 10\n  allow_empty: true\n",
		"targets:\n  - name: example\n    asns: [64500]\n    as_sets: [AS-EXAMPLE]\n",
		"api:\n  listen: 0.0.0.0:9179\n",
		"bgp:\n  asn: 65001\n  router_id: 192.0.2.1\n  neighbors:\n    - {address: 192.0.2.2, asn: 65001}\n",
		"retention: {runs: -1, max_age: 1h}\nlog: {level: loud}\n",
		"policy:\n  protect: [10.0.0.0/8, \"::/0\"]\n",
		"a: &x [*x]\n",
		"targets: [\n",
		"schedul: 5\nbgp: {asn: x, neighbors: [{<<: {asn: 1}, address: \"::ffff:10.0.0.1\"}, {address: 10.0.0.1, asn: 1, hold_time: 2}]}\n",
		"bgp: &b {asn: 1, router_id: 0.0.0.0, graceful_restart: {restart_time: 4096}, neighbors: [*b]}\n",
		"targets: []\njitter: 1000000h\nschedule: \"@every 1ns\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Lines) == 0 {
				t.Fatalf("error is not a *config.Error with lines: %v", err)
			}
			for _, l := range ce.Lines {
				if !strings.HasPrefix(l, "fuzz.yaml") {
					t.Fatalf("error line without the file name: %q", l)
				}
			}
			return
		}
		if len(cfg.TargetList) == 0 {
			t.Fatal("valid config without targets")
		}
		if cfg.Schedule != "" {
			if _, err := CronParser().Parse(cfg.Schedule); err != nil {
				t.Fatalf("accepted schedule %q does not parse: %v", cfg.Schedule, err)
			}
		}
		if w, a := cfg.Guard.Values(); w < 0 || w > 1 || a < 0 {
			t.Fatalf("accepted guard ratios %v %v", w, a)
		}
		if cfg.Jitter < 0 || cfg.Retention.Runs < 0 || cfg.Guard.MaxWithdraw < 0 {
			t.Fatalf("accepted negative values: %+v %+v", cfg.Retention, cfg.Guard)
		}
		if cfg.Jitter > MaxJitter {
			t.Fatalf("accepted jitter %v", cfg.Jitter)
		}
		if b := cfg.BGP; b != nil {
			if b.GracefulRestart.RestartTime > bgp.MaxRestartTime {
				t.Fatalf("accepted restart_time %d", b.GracefulRestart.RestartTime)
			}
			for _, n := range b.Neighbors {
				if n.HoldTime == 1 || n.HoldTime == 2 || n.HoldTime > 65535 {
					t.Fatalf("accepted hold_time %d", n.HoldTime)
				}
			}
		}
	})
}
