package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/asfence/asfence/field"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "examples", "asfence.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TargetList) != 2 || cfg.BGP == nil || len(cfg.BGP.Neighbors) != 2 || !cfg.BGP.Neighbors[1].Feed || cfg.BMP == nil || !cfg.WatchOn() || cfg.Sources == nil || cfg.Sources.IRR == nil {
		t.Fatalf("example config not fully loaded: %+v", cfg)
	}
}

func TestEmptyConfigUsesBuiltins(t *testing.T) {
	cfg, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TargetList) != 2 || cfg.Sources != nil || cfg.BGP != nil {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", "targets:\n  - name: x\n    asns: [1]\n    colour: red\n",
			[]string{"c.yaml:4: targets[0].colour: unknown key (known keys here: name, description, id,"}},
		{"wrong type", "bgp:\n  asn: sixty\n",
			[]string{`c.yaml:2: bgp.asn: want a whole number from 0 to 4294967295, got "sixty"`}},
		{"syntax", "targets: [\n", []string{"c.yaml:"}},
		{"validation", strings.Join([]string{
			"targets:",
			"  - name: tencent",
			"policy:",
			"  protect:",
			"    - 10.0.0.1/8",
			"bgp:",
			"  asn: 65000",
			"  router_id: 10.0.0.1",
			"  neighbors:",
			"    - address: 10.0.0.2",
			"      asn: 0",
			"    - address: 10.0.0.3",
			"      asn: 65001",
			"      targets: [nosuch]",
			"schedule: \"61 * * * *\"",
			"blackhole:",
			"  next_hop_v4: \"100::1\"",
			"api:",
			"  listen: 192.0.2.1:9179",
		}, "\n"), []string{
			"c.yaml:5: policy.protect[0]: invalid prefix \"10.0.0.1/8\": host bits set",
			"c.yaml:11: bgp.neighbors[0].asn: missing or 0",
			"c.yaml:12: bgp.neighbors[1].allow_ebgp: neighbor AS65001 is eBGP",
			"c.yaml:14: bgp.neighbors[1].targets[0]: unknown target \"nosuch\"",
			"c.yaml:15: schedule: invalid cron spec",
			"c.yaml:17: blackhole.next_hop_v4: must be an IPv4 address",
			"c.yaml:19: api.listen: 192.0.2.1:9179 is not a loopback address",
		}},
		{"outputs", "outputs:\n  names:\n    policy: \"bad name\"\n  max_entries:\n    junos: -1\n",
			[]string{`c.yaml:3: outputs.names.policy: invalid name "bad name"`, "c.yaml:5: outputs.max_entries.junos: must be positive"}},
		{"policy", "policy:\n  exceptions:\n    asns: [0]\n  ipv6:\n    min_length: 64\n    max_length: 48\n",
			[]string{"c.yaml:3: policy.exceptions.asns[0]: invalid ASN 0", "c.yaml:4: policy.ipv6: min_length 64 is above max_length 48"}},
		{"policy sources", strings.Join([]string{
			"targets:",
			"  - name: tencent",
			"policy:",
			"  min_sources: 0",
			"  exclude_sources: [\"table:[\"]",
			"  targets:",
			"    tencent:",
			"      min_sources: 40",
			"    bytedance:",
			"      exclude_sources: [cloud-ranges]",
			"sources:",
			"  files:",
			"    - {format: cidr, path: a, target: tencent, kind: cloud}",
		}, "\n"), []string{
			"c.yaml:5: policy.exclude_sources[0]: bad pattern \"table:[\"",
			"c.yaml:8: policy.targets.tencent.min_sources: must be 1-13 (kinds of source), got 40",
			"c.yaml:9: policy.targets.bytedance: unknown target \"bytedance\" (configured: tencent)",
			"c.yaml:13: sources.files[0].kind: unknown kind \"cloud\" (use asn-list, range-list, cloud-ranges,",
		}},
		{"api limits", "api:\n  read_timeout: -1s\n  write_timeout: 1ms\n  idle_timeout: 1m\n  max_connections: 100000\n",
			[]string{"c.yaml:2: api.read_timeout: -1s: want at least 100ms", "c.yaml:3: api.write_timeout: 1ms: want at least 100ms",
				"c.yaml:5: api.max_connections: 100000: want 1 to 65536"}},
		{"sources", "targets:\n  - name: tencent\nsources:\n  files:\n    - format: xml\n      path: a\n    - format: cidr\n      path: b\n  rpki:\n    - {}\n",
			[]string{"c.yaml:5: sources.files[0].format: unknown format \"xml\"", "c.yaml:7: sources.files[1]: a cidr list needs", "c.yaml:10: sources.rpki[0]: set path or url"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(c.doc))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestTokenFileChecked(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse("c.yaml", []byte("api:\n  listen: 0.0.0.0:9179\n  token_file: "+tok+"\n"))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3: api.token_file: token must be at least 16") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("c.yaml", []byte("api:\n  listen: 0.0.0.0:9179\n  token_file: "+tok+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cfg.APIToken(); got != "0123456789abcdef0123" {
		t.Fatalf("token %q", got)
	}
}

// examples/asfence.yaml documents every key: each field of Config (list
// elements and nested blocks included) appears in it at least once.
func TestExampleCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "asfence.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	lines := lineMap{}
	lines.walk("", &root)
	have := map[string]bool{}
	idx := regexp.MustCompile(`\[\d+\]`)
	for p := range lines {
		have[idx.ReplaceAllString(p, "[]")] = true
	}
	var want []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			if t == reflect.TypeOf(time.Time{}) {
				return
			}
			for i := range t.NumField() {
				f := t.Field(i)
				tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
				if tag == "-" || !f.IsExported() {
					continue
				}
				p := field.Path(prefix, tag)
				want = append(want, p)
				walk(p, f.Type)
			}
		case reflect.Slice:
			walk(prefix+"[]", t.Elem())
		}
	}
	walk("", reflect.TypeOf(Config{}))
	for _, p := range want {
		if !have[p] {
			t.Errorf("examples/asfence.yaml does not show %s", p)
		}
	}
}

// A duplicate id is reported on the target that carries it, at its line,
// even when an earlier target was rejected (issue: it was reported as
// targets[1].id, at the wrong line).
func TestDuplicateTargetIDNamesTheRightTarget(t *testing.T) {
	doc := strings.Join([]string{
		"targets:",
		"  - name: first",
		"    asns: [64500]",
		"    id: 7",
		"  - name: Not Valid",
		"    asns: [64501]",
		"  - name: third",
		"    asns: [64502]",
		"    id: 7",
	}, "\n")
	_, err := Parse("c.yaml", []byte(doc))
	if err == nil {
		t.Fatal("duplicate id accepted")
	}
	const want = `c.yaml:9: targets[2].id: id 7 is also used by target "first"`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error\n%v\nlacks %q", err, want)
	}
	if strings.Contains(err.Error(), "targets[1].id") {
		t.Fatalf("error names the wrong target:\n%v", err)
	}
}

// parseErrors parses doc and returns its error lines (failing if it is
// valid or the error is not a *Error).
func parseErrors(t *testing.T, doc string) []string {
	t.Helper()
	_, err := Parse("c.yaml", []byte(doc))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %v", err)
	}
	return ce.Lines
}

// Every problem of a file is reported in one pass, in the operator's
// words: unknown keys (with the nearest known key), values of the wrong
// kind and range checks, each as file:line: field.path: problem, in line
// order.
func TestAllProblemsAtOnce(t *testing.T) {
	doc := strings.Join([]string{
		`schedul: "@every 1h"`, // 1
		"bgp:",
		"  asn: sixty",
		"  router_id: 0.0.0.0",
		"  graceful_restart:", // 5
		"    restart_time: 4096",
		"  neighbours: []",
		"  neighbors:",
		"    - address: 127.0.0.6",
		"      asn: 65000", // 10
		"      hold_time: 2",
		"      holdtime: 90",
		`    - address: "::ffff:127.0.0.6"`,
		"      asn: 65000.5",
		"      passive: maybe", // 15
		"guard:",
		"  max_withdraw_ratio: 7",
		"  max_withdraw: [1]",
		"jitter: 1000000h",
		"retention: {runs: -1, max_age: 5}", // 20
		"log: {level: loud}",
	}, "\n")
	got := parseErrors(t, doc)
	want := []string{
		`c.yaml:1: schedul: unknown key (did you mean schedule?)`,
		`c.yaml:3: bgp.asn: want a whole number from 0 to 4294967295, got "sixty"`,
		`c.yaml:4: bgp.router_id: must not be 0.0.0.0: peers refuse a zero BGP identifier (RFC 6286)`,
		`c.yaml:6: bgp.graceful_restart.restart_time: must be 1-4095 seconds (a 12-bit field in the OPEN; 0 or unset: 120), got 4096`,
		`c.yaml:7: bgp.neighbours: unknown key (did you mean neighbors?)`,
		`c.yaml:11: bgp.neighbors[0].hold_time: must be 3-65535 seconds (RFC 4271; 0 or unset: 90), got 2`,
		`c.yaml:12: bgp.neighbors[0].holdtime: unknown key (did you mean hold_time?)`,
		`c.yaml:13: bgp.neighbors[1].address: duplicate neighbor 127.0.0.6`,
		`c.yaml:14: bgp.neighbors[1].asn: want a whole number from 0 to 4294967295, got "65000.5"`,
		`c.yaml:15: bgp.neighbors[1].passive: want true or false, got "maybe"`,
		`c.yaml:17: guard.max_withdraw_ratio: must be between 0 and 1`,
		`c.yaml:18: guard.max_withdraw: want a whole number, got a list`,
		`c.yaml:19: jitter: 1000000h is longer than a day (at most 24h)`,
		`c.yaml:20: retention.runs: must not be negative`,
		`c.yaml:20: retention.max_age: want a duration such as 90s, 5m or 6h, got "5"`,
		`c.yaml:21: log.level: unknown level "loud"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestShapeErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"key set twice", "schedule: \"@every 1h\"\nlog: {level: info}\nschedule: \"@every 2h\"\n",
			"c.yaml:3: schedule: set twice (first at line 1)"},
		{"block of the wrong kind", "bgp: 65000\n",
			`c.yaml:1: bgp: want a mapping (key: value lines), got "65000"`},
		{"list of the wrong kind", "targets:\n  name: x\n",
			"c.yaml:2: targets: want a list, got a mapping"},
		{"element of the wrong kind", "targets:\n  - tencent\n",
			`c.yaml:2: targets[0]: want a mapping (key: value lines), got "tencent"`},
		{"file of the wrong kind", "- a\n- b\n",
			"c.yaml:1: want a mapping (key: value lines), got a list"},
		{"case of a key", "log:\n  Level: info\n", "c.yaml:2: log.Level: unknown key (did you mean level?)"},
		{"date", "targets:\n  - name: x\n    asns: [1]\nsources:\n  files:\n    - {format: cidr, path: a, target: x, seen: yesterday}\n",
			`c.yaml:6: sources.files[0].seen: want a date such as 2024-05-01 or 2024-05-01T12:00:00Z, got "yesterday"`},
		{"map values", "outputs:\n  max_entries:\n    junos: lots\n",
			`c.yaml:3: outputs.max_entries.junos: want a whole number, got "lots"`},
		{"merge of a scalar", "log:\n  <<: 5\n", `c.yaml:2: log: << merges a mapping or a list of mappings, got "5"`},
		{"unknown key in a merged block", "x: &n {asn: 65001, hold: 9}\n", "c.yaml:1: x: unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(parseErrors(t, c.doc), "\n")
			if !strings.Contains(got, c.want) {
				t.Fatalf("got\n%s\nwant a line with %q", got, c.want)
			}
		})
	}
}

// Anchors, aliases and merge keys decode as YAML says; a problem inside an
// anchored block is reported once, where the anchor is first used.
func TestAnchorsAndMerges(t *testing.T) {
	doc := strings.Join([]string{
		"bgp:",
		"  asn: 65001",
		"  router_id: 192.0.2.1",
		"  neighbors:",
		"    - &common {address: 192.0.2.2, asn: 65001, hold_time: 30}",
		"    - <<: *common",
		"      address: 192.0.2.3",
	}, "\n")
	cfg, err := Parse("c.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.BGP.Neighbors; len(n) != 2 || n[1].Address != "192.0.2.3" || n[1].HoldTime != 30 || n[1].ASN != 65001 {
		t.Fatalf("neighbors %+v", n)
	}
	bad := strings.Replace(doc, "hold_time: 30", "hold_tme: 30", 1)
	got := parseErrors(t, bad)
	if len(got) != 1 || got[0] != "c.yaml:5: bgp.neighbors[0].hold_tme: unknown key (did you mean hold_time?)" {
		t.Fatalf("got %q", got)
	}
}

// An empty targets list is an error: it used to mean the built-in
// targets, so emptying the list blocked ByteDance and Tencent.
func TestEmptyTargetsListIsAnError(t *testing.T) {
	for _, doc := range []string{"targets: []\n", "schedule: \"@every 1h\"\ntargets:\n"} {
		got := strings.Join(parseErrors(t, doc), "\n")
		if !strings.Contains(got, "targets: no targets listed: list at least one, or remove the key to use the built-in targets (bytedance, tencent)") {
			t.Errorf("%q: got %s", doc, got)
		}
	}
}

func TestScheduleAndJitterBounds(t *testing.T) {
	cases := []struct {
		schedule, jitter string
		want             string // "" = valid
	}{
		{"@every 1ns", "", `schedule: "@every 1ns" runs more often than once every 1s`},
		{"@every 1500ms", "", `schedule: "@every 1500ms" is not a whole number of seconds (cron would run it every 1s)`},
		{"@every 1s", "", ""},
		{"@every 1h", "1h", ""},
		{"@every 1h", "61m", "jitter: 1h1m is longer than the 1h between two runs of schedule \"@every 1h\""},
		{"", "7h", "jitter: 7h is longer than the 6h between two runs of schedule \"@every 6h\""},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", "23h", ""},
		{"0 3 * * *", "25h", "jitter: 25h is longer than a day"},
		{"0 3,15 * * *", "13h", "between two runs of schedule \"0 3,15 * * *\""},
		{"*/10 * * * * *", "1m", "jitter: 1m is longer than the 10s between two runs"},
		{"59 59 23 * * *", "24h", ""},
		{"0,59 0 0 * * *", "1m", "jitter: 1m is longer than the 59s between two runs"},
		{"@hourly", "-1s", "jitter: must not be negative"},
		// cron's parser panicked on a time zone with nothing after it.
		{"TZ=", "", `schedule: invalid cron spec "TZ=": nothing after the time zone`},
		{"CRON_TZ=Europe/Berlin", "", "nothing after the time zone"},
	}
	for _, c := range cases {
		doc := ""
		if c.schedule != "" {
			doc += fmt.Sprintf("schedule: %q\n", c.schedule)
		}
		if c.jitter != "" {
			doc += "jitter: " + c.jitter + "\n"
		}
		_, err := Parse("c.yaml", []byte(doc))
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q jitter %q: got %v, want %q", c.schedule, c.jitter, err, c.want)
		}
	}
}

// A huge unknown key costs no quadratic typo search and is cut in the
// message.
func TestLongUnknownKey(t *testing.T) {
	key := strings.Repeat("k", 1<<20)
	got := parseErrors(t, "? "+key+"\n: 1\n") // an explicit key may be longer than 1024
	if len(got) != 1 || len(got[0]) > 1000 || !strings.Contains(got[0], "unknown key (known keys here: targets,") {
		t.Fatalf("got %.200q", got)
	}
}

func TestGuardWindow(t *testing.T) {
	c, err := Parse("c.yaml", []byte("guard: {max_withdraw_ratio: 0.2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Guard.WindowValue(); w != 24*time.Hour {
		t.Fatalf("default window %s", w)
	}
	c, err = Parse("c.yaml", []byte("guard:\n  window: 0s\n"))
	if err != nil || c.Guard.WindowValue() != 0 {
		t.Fatalf("window 0 (off): %v %v", c, err)
	}
	c, err = Parse("c.yaml", []byte("guard:\n  window: 7d\n"))
	if err == nil {
		t.Fatalf("7d accepted: %v", c.Guard.WindowValue())
	}
	got := parseErrors(t, "guard:\n  window: -1h\n")
	if len(got) != 1 || got[0] != "c.yaml:2: guard.window: must not be negative (0 turns the window off)" {
		t.Fatalf("errors %q", got)
	}
}
