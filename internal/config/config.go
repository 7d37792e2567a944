// Package config loads and validates the asfence YAML configuration. Every
// error names the file, the line and the field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/sources"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/internal/check"
	"github.com/asfence/asfence/policy"
)

// Config is the whole file.
type Config struct {
	Targets   []asn.TargetConfig   `yaml:"targets"`
	Sources   *sources.Config      `yaml:"sources"`
	Policy    policy.PolicyConfig  `yaml:"policy"`
	Outputs   filters.OutputConfig `yaml:"outputs"`
	BGP       *bgp.Config          `yaml:"bgp"`
	Blackhole bgp.BlackholeConfig  `yaml:"blackhole"`
	FlowSpec  bgp.FlowSpecConfig   `yaml:"flowspec"`

	// Daemon settings.
	Schedule string        `yaml:"schedule"`
	Jitter   time.Duration `yaml:"jitter"`
	// RetryAfter is the delay before a failed run is retried (nil: the
	// default; 0: no retries).
	RetryAfter   *time.Duration `yaml:"retry_after"`
	StateDir     string         `yaml:"state_dir"`
	OutputDir    string         `yaml:"output_dir"`
	TemplatesDir string         `yaml:"templates_dir"`
	Retention    Retention      `yaml:"retention"`
	Guard        Guard          `yaml:"guard"`
	API          API            `yaml:"api"`
	Log          Log            `yaml:"log"`

	// Derived on load.
	Path        string        `yaml:"-"`
	TargetList  []asn.Target  `yaml:"-"`
	PolicyRules policy.Policy `yaml:"-"`
}

// Retention bounds the run history kept in the state store.
type Retention struct {
	// Runs kept (default 1000); the last applied run is always kept.
	Runs int `yaml:"runs"`
	// MaxAge drops older runs (0: keep by count only).
	MaxAge time.Duration `yaml:"max_age"`
}

// Guard holds a run for approval when its change is too large.
type Guard struct {
	// MaxWithdrawRatio: share of a target's prefixes a run may withdraw
	// (default 0.10).
	MaxWithdrawRatio *float64 `yaml:"max_withdraw_ratio"`
	// MaxAddRatio: share of a target's prefixes a run may add (default 0.50).
	MaxAddRatio *float64 `yaml:"max_add_ratio"`
	// MaxWithdraw: absolute number of prefixes a run may withdraw (0: no limit).
	MaxWithdraw int `yaml:"max_withdraw"`
	// AllowEmpty lets a run empty a target (default false: held).
	AllowEmpty bool `yaml:"allow_empty"`
}

// API is the HTTP API.
type API struct {
	// Listen address, default 127.0.0.1:9179; "off" disables the API.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token required by mutating endpoints.
	TokenFile string `yaml:"token_file"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // auto (text on a terminal, else json), text, json
}

// Defaults.
const (
	DefaultAPIListen = "127.0.0.1:9179"
	DefaultSchedule  = "@every 6h"
)

// GuardValues returns the guard with defaults filled in.
func (g Guard) Values() (withdrawRatio, addRatio float64) {
	withdrawRatio, addRatio = 0.10, 0.50
	if g.MaxWithdrawRatio != nil {
		withdrawRatio = *g.MaxWithdrawRatio
	}
	if g.MaxAddRatio != nil {
		addRatio = *g.MaxAddRatio
	}
	return withdrawRatio, addRatio
}

// Error is a config file with problems; each line names file, line, field.
type Error struct {
	File  string
	Lines []string
}

func (e *Error) Error() string {
	if len(e.Lines) == 1 {
		return e.Lines[0]
	}
	return fmt.Sprintf("%s: %d problems:\n  %s", e.File, len(e.Lines), strings.Join(e.Lines, "\n  "))
}

// MaxConfigBytes bounds what Load reads.
const MaxConfigBytes = 16 << 20

// Load reads, parses and validates a config file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Lines: []string{fmt.Sprintf("%s: %v", path, errors.Unwrap(err))}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, &Error{File: path, Lines: []string{fmt.Sprintf("%s: %v", path, err)}}
	}
	if len(data) > MaxConfigBytes {
		return nil, &Error{File: path, Lines: []string{fmt.Sprintf("%s: larger than %d bytes", path, MaxConfigBytes)}}
	}
	return Parse(path, data)
}

// Parse parses and validates config text; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	cfg := &Config{Path: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Lines: yamlErrors(name, err)}
	}
	if len(root.Content) == 0 {
		// An empty file is a valid config: all defaults.
		cfg.finish(name, nil, lineMap{})
		return cfg, nil
	}
	lines := lineMap{}
	lines.walk("", root.Content[0])
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Lines: yamlErrors(name, err)}
	}
	if err := cfg.finish(name, nil, lines); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *Config) finish(name string, _ []byte, lines lineMap) error {
	var p check.Problems
	c.validate(&p)
	if p.Empty() {
		return nil
	}
	var out []string
	for _, pr := range p.List() {
		out = append(out, fmt.Sprintf("%s:%d: %s: %s", name, lines.line(pr.Path), pr.Path, pr.Msg))
	}
	return &Error{File: name, Lines: out}
}

// CronParser accepts 5 or 6 fields (seconds optional) and descriptors such
// as "@every 6h"; "CRON_TZ=Area/City " prefixes are honoured.
func CronParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

var apiTokenOK = regexp.MustCompile(`^\S{16,}$`)

func (c *Config) validate(p *check.Problems) {
	c.TargetList = asn.BuildTargets(c.Targets, "targets", p)
	names := make([]string, len(c.TargetList))
	for i, t := range c.TargetList {
		names[i] = t.Name
	}
	c.PolicyRules = c.Policy.Build("policy", p)
	c.Outputs.Validate("outputs", p)
	for i, v := range c.Outputs.Vendors {
		if !filters.KnownVendor(v) {
			p.Add(check.Join("outputs", "vendors", i), "unknown vendor %q (see `asfence vendors`)", v)
		}
	}
	if c.Sources != nil {
		sources.Validate(c.Sources, "sources", names, p)
	}
	if c.BGP != nil {
		c.BGP.Validate("bgp", names, p)
	}
	c.Blackhole.Validate("blackhole", p)
	c.FlowSpec.Validate("flowspec", p)
	if c.Schedule != "" {
		if _, err := CronParser().Parse(c.Schedule); err != nil {
			p.Add("schedule", "invalid cron spec %q: %v", c.Schedule, err)
		}
	}
	if c.Jitter < 0 {
		p.Add("jitter", "must not be negative")
	}
	if c.RetryAfter != nil && *c.RetryAfter < 0 {
		p.Add("retry_after", "must not be negative (0 turns retries off)")
	}
	if c.Retention.Runs < 0 {
		p.Add(check.Join("retention", "runs"), "must not be negative")
	}
	wr, ar := c.Guard.Values()
	if wr < 0 || wr > 1 {
		p.Add(check.Join("guard", "max_withdraw_ratio"), "must be between 0 and 1")
	}
	if ar < 0 {
		p.Add(check.Join("guard", "max_add_ratio"), "must not be negative")
	}
	if c.Guard.MaxWithdraw < 0 {
		p.Add(check.Join("guard", "max_withdraw"), "must not be negative")
	}
	if c.API.Listen != "" && c.API.Listen != "off" {
		host, port, err := splitHostPort(c.API.Listen)
		if err != nil {
			p.Add(check.Join("api", "listen"), "%v", err)
		} else {
			a, err := netip.ParseAddr(host)
			if err != nil && host != "localhost" {
				p.Add(check.Join("api", "listen"), "invalid address %q (use an IP address)", host)
			} else if err == nil && !a.IsLoopback() && c.API.TokenFile == "" {
				p.Add(check.Join("api", "listen"), "%s is not a loopback address: set api.token_file so that mutating endpoints need a token", c.API.Listen)
			}
			if port < 0 {
				p.Add(check.Join("api", "listen"), "invalid port")
			}
		}
	}
	if c.API.TokenFile != "" {
		if b, err := os.ReadFile(c.API.TokenFile); err != nil {
			p.Add(check.Join("api", "token_file"), "%v", err)
		} else if !apiTokenOK.Match(bytes.TrimSpace(b)) {
			p.Add(check.Join("api", "token_file"), "token must be at least 16 non-space characters")
		}
	}
	switch c.Log.Level {
	case "", "trace", "debug", "info", "warn", "warning", "error":
	default:
		p.Add(check.Join("log", "level"), "unknown level %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "auto", "text", "json":
	default:
		p.Add(check.Join("log", "format"), "unknown format %q (auto, text, json)", c.Log.Format)
	}
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q: want address:port", s)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", -1, fmt.Errorf("%q: invalid port", s)
	}
	return host, port, nil
}

// APIToken reads the API token, or "" when none is configured.
func (c *Config) APIToken() (string, error) {
	if c.API.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.API.TokenFile)
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}

// lineMap maps field paths ("bgp.neighbors[0].asn") to source lines.
type lineMap map[string]int

func (m lineMap) walk(path string, n *yaml.Node) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		m.walk(path, n.Content[0])
		return
	}
	if path != "" {
		if _, ok := m[path]; !ok {
			m[path] = n.Line
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := check.Join(path, k.Value)
			m[p] = k.Line
			m.walk(p, v)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			m.walk(check.Join(path, i), c)
		}
	case yaml.AliasNode:
		// Not followed: an anchor may contain its own alias (a cycle), and
		// nested aliases multiply; the alias's own line is kept above.
	}
}

// line finds the line of path, or of its closest parent present in the file
// (a missing field is reported where its block starts).
func (m lineMap) line(path string) int {
	for p := path; p != ""; {
		if l, ok := m[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 1
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlErrors turns yaml.v3 errors ("yaml: line 3: ...", or a TypeError
// with one "line N: ..." per problem) into "file:N: ..." lines.
func yamlErrors(name string, err error) []string {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out []string
	for _, m := range msgs {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			out = append(out, fmt.Sprintf("%s:%s: %s", name, sm[1], sm[2]))
		} else {
			out = append(out, fmt.Sprintf("%s: %s", name, m))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return lineNo(out[i]) < lineNo(out[j]) })
	return out
}

func lineNo(s string) int {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(parts[1])
	return n
}
