// Package config loads and validates the asfence YAML configuration. Every
// error names the file, the line and the field.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/sources"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/field"
	"github.com/asfence/asfence/filters"
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
	// BMP and Watch: the live watch (watch.go).
	BMP   *BMP  `yaml:"bmp"`
	Watch Watch `yaml:"watch"`

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
	// Window: the withdrawal limits also count against the set that was
	// in force at the start of this window (or the last approved one, if
	// newer), so that small steps cannot add up past them (nil: 24h; 0:
	// per run only).
	Window *time.Duration `yaml:"window"`
}

// DefaultGuardWindow is guard.window when unset.
const DefaultGuardWindow = 24 * time.Hour

// WindowValue is guard.window with its default (0: off).
func (g Guard) WindowValue() time.Duration {
	if g.Window == nil {
		return DefaultGuardWindow
	}
	return *g.Window
}

// API is the HTTP API.
type API struct {
	// Listen address, default 127.0.0.1:9179; "off" disables the API.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token required by mutating endpoints.
	TokenFile string `yaml:"token_file"`
	// ReadTimeout, WriteTimeout and IdleTimeout bound one request's
	// reading, one response's writing and a keep-alive connection's wait
	// for its next request (0: the defaults, 30s, 2m and 1m).
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	IdleTimeout  time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections served at once (0: 256; lower
	// if the open-file limit is low).
	MaxConnections int `yaml:"max_connections"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // auto (text on a terminal, else json), text, json
}

// Defaults.
const (
	DefaultAPIListen  = "127.0.0.1:9179"
	DefaultSchedule   = "@every 6h"
	DefaultStateDir   = "/var/lib/asfence"
	DefaultRetryAfter = time.Minute
)

// StateDirectory is the configured state directory, or the default.
func (c *Config) StateDirectory() string {
	return cmp.Or(c.StateDir, DefaultStateDir)
}

// OutputDirectory is the configured output directory, or "out" in the
// state directory.
func (c *Config) OutputDirectory() string {
	return cmp.Or(c.OutputDir, filepath.Join(c.StateDirectory(), "out"))
}

// APIAddress is the configured API address ("" when the API is off).
func (c *Config) APIAddress() string {
	switch c.API.Listen {
	case "":
		return DefaultAPIListen
	case "off":
		return ""
	}
	return c.API.Listen
}

// ScheduleSpec is the configured cron schedule, or the default.
func (c *Config) ScheduleSpec() string {
	return cmp.Or(c.Schedule, DefaultSchedule)
}

// RetryDelay is the first retry delay after a failed run (0: no retries).
func (c *Config) RetryDelay() time.Duration {
	if c.RetryAfter == nil {
		return DefaultRetryAfter
	}
	return *c.RetryAfter
}

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

// Parse parses and validates config text; name is used in errors. All
// problems are reported at once, each as "file:line: field.path: problem".
func Parse(name string, data []byte) (*Config, error) {
	cfg := &Config{Path: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, errorOf(name, yamlProblems(err), lineMap{})
	}
	lines := lineMap{}
	shape := newShapeCheck()
	var probs []problem
	if len(root.Content) > 0 {
		doc := root.Content[0]
		lines.walk("", doc)
		if shape.value("", doc, reflect.TypeOf(cfg).Elem()) {
			// The shape check lets through only what decodes, so this
			// error is a safety net: keep what it says, check nothing more.
			var te *yaml.TypeError
			if err := doc.Decode(cfg); err != nil {
				probs = append(probs, yamlProblems(err)...)
				if !errors.As(err, &te) {
					shape.bad[""] = true
				}
			}
		}
		probs = append(probs, shape.problems...)
	}
	for _, e := range cfg.validate(lines) {
		if !shape.cut(e.Path) {
			probs = append(probs, problem{path: e.Path, msg: e.Msg})
		}
	}
	if len(probs) > 0 {
		return nil, errorOf(name, probs, lines)
	}
	return cfg, nil
}

// cut reports whether path, or a block holding it, was cut out of the file
// by the shape check (its value there is not the operator's).
func (c *shapeCheck) cut(path string) bool {
	for p := path; ; p = parentPath(p) {
		if c.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// parentPath: "a.b[2]" -> "a.b" -> "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// errorOf turns problems into an *Error, in line order: "file:line:
// field.path: problem" ("file:line: problem" without a field, "file:
// problem" without a line).
func errorOf(name string, probs []problem, lines lineMap) *Error {
	for i := range probs {
		if probs[i].line == 0 {
			probs[i].pos = lines.at(probs[i].path)
		}
	}
	sort.SliceStable(probs, func(i, j int) bool {
		a, b := probs[i].pos, probs[j].pos
		return a.line < b.line || a.line == b.line && a.col < b.col
	})
	out := make([]string, 0, len(probs))
	for _, p := range probs {
		var b strings.Builder
		b.WriteString(name)
		if p.line > 0 {
			fmt.Fprintf(&b, ":%d", p.line)
		}
		b.WriteString(": ")
		if p.path != "" {
			b.WriteString(p.path + ": ")
		}
		b.WriteString(p.msg)
		out = append(out, b.String())
	}
	return &Error{File: name, Lines: slices.Compact(out)}
}

// CronParser accepts 5 or 6 fields (seconds optional) and descriptors such
// as "@every 6h"; "CRON_TZ=Area/City " prefixes are honoured.
func CronParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

var apiTokenOK = regexp.MustCompile(`^\S{16,}$`)

// validate checks the decoded values; paths are the file's, from its root.
// lines tells which keys the file has.
func (c *Config) validate(lines lineMap) field.List {
	var p field.List
	targets, err := asn.BuildTargets(c.Targets)
	p.Append("targets", err)
	if _, listed := lines["targets"]; listed && len(c.Targets) == 0 {
		// An empty list would otherwise mean the built-ins: blocking two
		// large networks because a list was emptied is the wrong surprise.
		p.Add("targets", "no targets listed: list at least one, or remove the key to use the built-in targets (%s)", builtinNames())
	}
	c.TargetList = targets
	names := make([]string, len(c.TargetList))
	for i, t := range c.TargetList {
		names[i] = t.Name
	}
	c.PolicyRules, err = c.Policy.Build()
	p.Append("policy", err)
	for name := range c.Policy.Targets {
		if !slices.Contains(names, name) {
			p.Add(field.Path("policy", "targets", name), "unknown target %q (configured: %s)", name, strings.Join(names, ", "))
		}
	}
	p.Append("outputs", c.Outputs.Validate())
	for i, v := range c.Outputs.Vendors {
		if !filters.KnownVendor(v) {
			p.Add(field.Path("outputs", "vendors", i), "unknown vendor %q (see `asfence vendors`)", v)
		}
	}
	if c.Sources != nil {
		p.Append("sources", sources.Validate(c.Sources, names))
	}
	if c.BGP != nil {
		p.Append("bgp", c.BGP.Validate(names))
	}
	p.Append("blackhole", c.Blackhole.Validate())
	p.Append("flowspec", c.FlowSpec.Validate())
	c.validateSchedule(&p)
	c.validateWatch(&p)
	if c.RetryAfter != nil && *c.RetryAfter < 0 {
		p.Add("retry_after", "must not be negative (0 turns retries off)")
	}
	if c.Retention.Runs < 0 {
		p.Add(field.Path("retention", "runs"), "must not be negative")
	}
	wr, ar := c.Guard.Values()
	if wr < 0 || wr > 1 {
		p.Add(field.Path("guard", "max_withdraw_ratio"), "must be between 0 and 1")
	}
	if ar < 0 {
		p.Add(field.Path("guard", "max_add_ratio"), "must not be negative")
	}
	if c.Guard.MaxWithdraw < 0 {
		p.Add(field.Path("guard", "max_withdraw"), "must not be negative")
	}
	if c.Guard.Window != nil && *c.Guard.Window < 0 {
		p.Add(field.Path("guard", "window"), "must not be negative (0 turns the window off)")
	}
	if c.API.Listen != "" && c.API.Listen != "off" {
		host, port, err := net.SplitHostPort(c.API.Listen)
		if err != nil {
			p.Add(field.Path("api", "listen"), "%q: want address:port", c.API.Listen)
		} else {
			a, err := netip.ParseAddr(host)
			if err != nil && host != "localhost" {
				p.Add(field.Path("api", "listen"), "invalid address %q (use an IP address)", host)
			} else if err == nil && !a.IsLoopback() && c.API.TokenFile == "" {
				p.Add(field.Path("api", "listen"), "%s is not a loopback address: set api.token_file so that mutating endpoints need a token", c.API.Listen)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				p.Add(field.Path("api", "listen"), "%q: invalid port", c.API.Listen)
			}
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_timeout", c.API.ReadTimeout}, {"write_timeout", c.API.WriteTimeout}, {"idle_timeout", c.API.IdleTimeout}} {
		if d.v < 0 || (d.v > 0 && d.v < 100*time.Millisecond) {
			p.Add(field.Path("api", d.key), "%s: want at least 100ms (or 0 for the default)", d.v)
		}
	}
	if c.API.MaxConnections < 0 || c.API.MaxConnections > 65536 {
		p.Add(field.Path("api", "max_connections"), "%d: want 1 to 65536 (or 0 for the default)", c.API.MaxConnections)
	}
	if c.API.TokenFile != "" {
		if b, err := os.ReadFile(c.API.TokenFile); err != nil {
			p.Add(field.Path("api", "token_file"), "%v", err)
		} else if !apiTokenOK.Match(bytes.TrimSpace(b)) {
			p.Add(field.Path("api", "token_file"), "token must be at least 16 non-space characters")
		}
	}
	switch c.Log.Level {
	case "", "trace", "debug", "info", "warn", "warning", "error":
	default:
		p.Add(field.Path("log", "level"), "unknown level %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "auto", "text", "json":
	default:
		p.Add(field.Path("log", "format"), "unknown format %q (auto, text, json)", c.Log.Format)
	}
	return p
}

// RenderOptions are the options of one vendor file rendered under this
// config; regenerate is the command that reproduces it, for its header.
func (c *Config) RenderOptions(vendor, version, regenerate string) filters.RenderOptions {
	return filters.RenderOptions{
		Vendor:       vendor,
		Names:        c.Outputs.Names,
		MaxEntries:   filters.MaxEntriesFor(c.Outputs, vendor),
		TemplatesDir: c.TemplatesDir,
		Version:      version,
		Regenerate:   regenerate,
	}
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

// lineMap maps field paths ("bgp.neighbors[0].asn") to where they are in
// the file.
type lineMap map[string]pos

// pos is a line and column, both from 1.
type pos struct{ line, col int }

func (m lineMap) walk(path string, n *yaml.Node) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		m.walk(path, n.Content[0])
		return
	}
	if _, ok := m[path]; !ok && path != "" {
		m[path] = pos{n.Line, n.Column}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := field.Path(path, k.Value)
			if _, ok := m[p]; !ok { // a key set twice: the first counts
				m[p] = pos{k.Line, k.Column}
			}
			m.walk(p, v)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			m.walk(field.Path(path, i), c)
		}
	case yaml.AliasNode:
		// Not followed: an anchor may contain its own alias (a cycle), and
		// nested aliases multiply; the alias's own line is kept above.
	}
}

// at finds where path is, or its closest parent present in the file (a
// missing field is reported where its block starts).
func (m lineMap) at(path string) pos {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := m[p]; ok {
			return l
		}
	}
	return pos{1, 1}
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlProblems turns yaml.v3 errors ("yaml: line 3: ...", or a TypeError
// with one "line N: ..." per problem) into problems at those lines.
func yamlProblems(err error) []problem {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	out := make([]problem, 0, len(msgs))
	for _, m := range msgs {
		pr := problem{pos: pos{line: -1}, msg: m}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			pr.line, _ = strconv.Atoi(sm[1])
			pr.msg = sm[2]
		}
		out = append(out, pr)
	}
	return out
}
