package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/asfence/asfence/internal/check"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "examples", "asfence.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.TargetList) != 2 || cfg.BGP == nil || len(cfg.BGP.Neighbors) != 1 || cfg.Sources == nil || cfg.Sources.IRR == nil {
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
			[]string{"c.yaml:4: field colour not found"}},
		{"wrong type", "bgp:\n  asn: sixty\n",
			[]string{"c.yaml:2: cannot unmarshal"}},
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
				p := check.Join(prefix, tag)
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
