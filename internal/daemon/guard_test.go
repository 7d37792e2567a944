package daemon

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/policy"
)

// intentOf builds an Intent with n host prefixes per target.
func intentOf(counts map[string]int) *policy.Intent {
	in := &policy.Intent{}
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		n := counts[name]
		ti := int(name[0]) // the same addresses for a target in every Intent
		t := policy.TargetIntent{Name: name, ID: uint32(ti)}
		for i := 0; i < n; i++ {
			p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/32", ti, i/256, i%256))
			t.Prefixes = append(t.Prefixes, asn.Prefix{Prefix: p})
		}
		in.Targets = append(in.Targets, t)
	}
	return in
}

func TestCheckGuard(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name     string
		g        config.Guard
		old, new map[string]int
		want     []string // substrings, one per reason; nil: pass
	}{
		{"first fill is never held", config.Guard{}, nil, map[string]int{"a": 1000}, nil},
		{"10% withdrawn is the limit", config.Guard{}, map[string]int{"a": 100}, map[string]int{"a": 90}, nil},
		{"11% withdrawn is held", config.Guard{}, map[string]int{"a": 100}, map[string]int{"a": 89},
			[]string{"a: would withdraw 11 of 100 prefixes (11.0%"}},
		{"50% added is the limit", config.Guard{}, map[string]int{"a": 100}, map[string]int{"a": 150}, nil},
		{"51% added is held", config.Guard{}, map[string]int{"a": 100}, map[string]int{"a": 151},
			[]string{"a: would add 51 prefixes to 100"}},
		{"emptying is held", config.Guard{MaxWithdrawRatio: f(1)}, map[string]int{"a": 5, "b": 5}, map[string]int{"a": 0, "b": 5},
			[]string{"a: would empty the target"}},
		{"emptying allowed", config.Guard{MaxWithdrawRatio: f(1), AllowEmpty: true}, map[string]int{"a": 5}, map[string]int{"a": 0}, nil},
		{"absolute limit over all targets", config.Guard{MaxWithdrawRatio: f(1), MaxWithdraw: 15},
			map[string]int{"a": 100, "b": 100}, map[string]int{"a": 90, "b": 90},
			[]string{"would withdraw 20 prefixes in all (guard.max_withdraw 15)"}},
		{"configured ratios", config.Guard{MaxWithdrawRatio: f(0.5), MaxAddRatio: f(0.01)},
			map[string]int{"a": 100}, map[string]int{"a": 102}, []string{"guard.max_add_ratio 1.0%"}},
	}
	for _, c := range cases {
		var old *policy.Intent
		if c.old != nil {
			old = intentOf(c.old)
		}
		got := checkGuard(c.g, policy.Compare(old, intentOf(c.new)))
		if len(got) != len(c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], c.want[i]) {
				t.Errorf("%s: %q lacks %q", c.name, got[i], c.want[i])
			}
		}
	}
}

func TestJitterSchedule(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Schedule: "CRON_TZ=Europe/Berlin 0 3 * * *", Jitter: 10 * time.Minute}
	s, err := parseSchedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	base := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC) // 03:00 in Berlin (CET)
	for i := 0; i < 100; i++ {
		n := s.Next(now)
		if n.Before(base) || !n.Before(base.Add(10*time.Minute)) {
			t.Fatalf("next = %s, want within 10m after %s", n, base)
		}
	}
	if _, err := parseSchedule(&config.Config{Schedule: "61 * * * *"}); err == nil {
		t.Fatal("bad schedule accepted")
	}
}
