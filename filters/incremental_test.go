package filters

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// changedIntent is smallIntent after a registry change: one prefix gone
// (71.18.247.0/24), the sibling of another added (71.18.249.0/24, so
// 71.18.248.0/24 and 71.18.250.0/23 become 71.18.248.0/22 in the
// coverage), a new prefix and IPv6 prefix,
// and the origin AS132203 added to tencent.
func changedIntent(t testing.TB) *policy.Intent {
	t.Helper()
	s, err := asn.ReadSnapshotFile("testdata/snapshot-small.json")
	if err != nil {
		t.Fatal(err)
	}
	bd := s.Target("bytedance")
	bd.Prefixes = slices.DeleteFunc(bd.Prefixes, func(p asn.Prefix) bool { return p.Prefix.String() == "71.18.247.0/24" })
	ev := []asn.Evidence{{Source: "test", Detail: "changed", Seen: s.GeneratedAt}}
	for _, p := range []string{"71.18.249.0/24", "101.45.200.0/24", "2404:9dc0:cd10::/48"} {
		bd.Prefixes = append(bd.Prefixes, asn.Prefix{Prefix: netip.MustParsePrefix(p), Origins: []uint32{138699}, Evidence: ev})
	}
	tc := s.Target("tencent")
	tc.ASNs = append(tc.ASNs, asn.ASN{ASN: 132203, Evidence: ev})
	s.Normalize()
	return buildPolicy(t, policy.PolicyConfig{Protect: []string{"118.26.132.0/24"}}).Apply(s)
}

// TestIncrementalModel checks the incremental commands of each vendor
// against a model of the list they edit: the old file's entries, changed
// by the commands, must equal the new file's entries.
func TestIncrementalModel(t *testing.T) {
	old, neu := smallIntent(t), changedIntent(t)
	entryRE := map[string]*regexp.Regexp{
		"cisco-ios":  regexp.MustCompile(`(?m)^(ipv?6? prefix-list \S+ (?:permit|deny) .*|ip as-path access-list \S+ permit .*)$`),
		"frr":        regexp.MustCompile(`(?m)^(ipv?6? prefix-list \S+ (?:permit|deny) .*|bgp as-path access-list \S+ permit .*)$`),
		"junos":      regexp.MustCompile(`(?m)^\s+(\S+ (?:upto|exact|prefix-length-range) \S+);$`),
		"nokia-sros": regexp.MustCompile(`(?m)^    (prefix \S+ (?:exact|prefix-length-range \S+))$`),
		"mikrotik":   regexp.MustCompile(`(?m)^add chain="(ASFENCE-V[46])" rule="(if \(dst in .*)"$`),
	}
	for vendor, re := range entryRE {
		t.Run(vendor, func(t *testing.T) {
			up, err := IncrementalCommands(vendor, old, neu, RenderOptions{})
			if err != nil || up.FullReplace != "" {
				t.Fatalf("err %v, full replace %q", err, up.FullReplace)
			}
			cmds := up.Commands
			entries := func(in *policy.Intent) map[string]bool {
				set := map[string]bool{}
				for _, m := range re.FindAllStringSubmatch(string(render(t, in, RenderOptions{Vendor: vendor})), -1) {
					set[strings.Join(m[1:], " ")] = true
				}
				return set
			}
			model, want := entries(old), entries(neu)
			if mapsEqual(model, want) || len(want) == 0 {
				t.Fatalf("fixture: old and new files have the same entries %v", keys(want))
			}
			for _, l := range strings.Split(cmds, "\n") {
				l = strings.TrimSpace(l)
				switch vendor {
				case "cisco-ios", "frr":
					if strings.HasPrefix(l, "no ") && re.MatchString(l[3:]) {
						delete(model, l[3:])
					} else if re.MatchString(l) {
						model[l] = true
					}
				case "junos":
					if m := regexp.MustCompile(`^(set|delete) policy-options route-filter-list \S+ (.*)$`).FindStringSubmatch(l); m != nil {
						model[m[2]] = m[1] == "set"
					}
				case "nokia-sros":
					if strings.HasPrefix(l, "no prefix ") && strings.Contains(l, "-") {
						delete(model, l[3:])
					} else if strings.HasPrefix(l, "prefix ") && (strings.Contains(l, "exact") || strings.Contains(l, "prefix-length-range")) {
						model[l] = true
					}
				case "mikrotik":
					if m := regexp.MustCompile(`^add chain="(\S+)" rule="(if \(dst in [^"]*)" place-before=`).FindStringSubmatch(l); m != nil {
						model[m[1]+" "+m[2]] = true
					}
					if m := regexp.MustCompile(`^remove \[find where chain="(\S+)" rule="(if \(dst in [^"]*)"\]$`).FindStringSubmatch(l); m != nil {
						delete(model, m[1]+" "+m[2])
					}
				}
			}
			for k, v := range model {
				if !v {
					delete(model, k)
				}
			}
			if !mapsEqual(model, want) {
				t.Errorf("after the commands:\n%v\nthe new file has:\n%v\ncommands:\n%s", keys(model), keys(want), cmds)
			}
			if !strings.Contains(cmds, "IPv4 entries +") {
				t.Errorf("no summary line:\n%s", cmds)
			}
		})
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestIncrementalFullReplace(t *testing.T) {
	old, neu := smallIntent(t), changedIntent(t)
	for _, v := range []string{"bird", "openbgpd", "json", "cisco-iosxr", "arista-eos", "huawei-vrp"} {
		up, err := IncrementalCommands(v, old, neu, RenderOptions{})
		if err != nil || up.FullReplace == "" || up.Commands != "" {
			t.Errorf("%s: %v %+v", v, err, up)
		}
	}
	// A list becoming empty changes Junos policy terms: full replace.
	up, err := IncrementalCommands("junos", old, emptyIntent(), RenderOptions{})
	if err != nil || up.Commands != "" || up.FullReplace != "list ASFENCE-V4 became empty, which adds or removes a policy term: load the full file" {
		t.Errorf("junos to empty: %v %+v", err, up)
	}
	// Nothing changed.
	up, err = IncrementalCommands("frr", old, smallIntent(t), RenderOptions{})
	if err != nil || up.FullReplace != "" || !strings.Contains(up.Commands, "nothing changed") {
		t.Errorf("unchanged: %v %+v", err, up)
	}
	if _, err := IncrementalCommands("nosuch", old, neu, RenderOptions{}); err == nil {
		t.Error("unknown vendor accepted")
	}
}

// TestIncrementalNftables loads the old file into a fresh network
// namespace with the real nft, applies the incremental commands, and
// compares the sets with the new coverage.
func TestIncrementalNftables(t *testing.T) {
	nft := needTool(t, "nft", "/usr/sbin/nft")
	unshare := needTool(t, "unshare", "/usr/bin/unshare")
	old, neu := smallIntent(t), changedIntent(t)
	up, err := IncrementalCommands("nftables", old, neu, RenderOptions{})
	if err != nil || up.FullReplace != "" {
		t.Fatalf("%v %+v", err, up)
	}
	cmds := up.Commands
	if !strings.Contains(cmds, "delete element inet asfence ASFENCE-ACL-V4 { 71.18.247.0/24, 71.18.248.0/24, 71.18.250.0/23 }") ||
		!strings.Contains(cmds, "add element inet asfence ASFENCE-ACL-V4 { 71.18.248.0/22, 101.45.200.0/24 }") {
		t.Errorf("unexpected commands:\n%s", cmds)
	}
	dir := t.TempDir()
	oldFile, incFile := filepath.Join(dir, "old.nft"), filepath.Join(dir, "inc.nft")
	if err := os.WriteFile(oldFile, render(t, old, RenderOptions{Vendor: "nftables"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(incFile, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("%s -f %s && %s -f %s && %s -j list table inet asfence", nft, oldFile, nft, incFile, nft)
	out, err := exec.Command(unshare, "-n", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	got := nftSets(t, out)
	for name, want := range map[string][]netip.Prefix{"ASFENCE-ACL-V4": neu.Coverage("", prefixset.IPv4), "ASFENCE-ACL-V6": neu.Coverage("", prefixset.IPv6)} {
		if !slices.Equal(got[name], want) {
			t.Errorf("set %s after the incremental update: %v, want %v", name, got[name], want)
		}
	}
}

// nftSets reads the elements of each set from `nft -j list` output.
func nftSets(t *testing.T, out []byte) map[string][]netip.Prefix {
	t.Helper()
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	sets := map[string][]netip.Prefix{}
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var set struct {
			Name string            `json:"name"`
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		for _, e := range set.Elem {
			var pfx struct {
				Prefix struct {
					Addr string `json:"addr"`
					Len  int    `json:"len"`
				} `json:"prefix"`
			}
			var addr string
			switch {
			case json.Unmarshal(e, &pfx) == nil && pfx.Prefix.Addr != "":
				sets[set.Name] = append(sets[set.Name], netip.PrefixFrom(netip.MustParseAddr(pfx.Prefix.Addr), pfx.Prefix.Len))
			case json.Unmarshal(e, &addr) == nil:
				a := netip.MustParseAddr(addr)
				sets[set.Name] = append(sets[set.Name], netip.PrefixFrom(a, a.BitLen()))
			default:
				t.Fatalf("set element %s", e)
			}
		}
	}
	return sets
}

// TestIncrementalIOSACL models an IOS named ACL (sequence-numbered lines)
// through the incremental commands: the denies of the new file, in any
// order, and the final permit still last.
func TestIncrementalIOSACL(t *testing.T) {
	old, neu := smallIntent(t), changedIntent(t)
	up, err := IncrementalCommands("cisco-ios", old, neu, RenderOptions{})
	if err != nil || up.FullReplace != "" {
		t.Fatalf("%v %+v", err, up)
	}
	cmds := up.Commands
	aclLines := func(conf, header string) []string {
		var out []string
		in := false
		for _, l := range strings.Split(conf, "\n") {
			switch {
			case l == header:
				in = true
			case in && strings.HasPrefix(l, " "):
				out = append(out, strings.TrimSpace(l))
			case in:
				return out
			}
		}
		return out
	}
	type ace struct {
		seq  int
		line string
	}
	for _, fam := range []struct{ header, reseq, seqKw string }{
		{"ip access-list extended ASFENCE-ACL-V4", "ip access-list resequence ASFENCE-ACL-V4 ", ""},
		{"ipv6 access-list ASFENCE-ACL-V6", "ipv6 access-list resequence ASFENCE-ACL-V6 ", "sequence "},
	} {
		var acl []ace
		for i, l := range aclLines(string(render(t, old, RenderOptions{Vendor: "cisco-ios"})), fam.header) {
			acl = append(acl, ace{10 * (i + 1), l})
		}
		in := false
		for _, l := range strings.Split(cmds, "\n") {
			switch {
			case strings.HasPrefix(l, fam.reseq):
				var start, step int
				fmt.Sscanf(strings.TrimPrefix(l, fam.reseq), "%d %d", &start, &step)
				slices.SortFunc(acl, func(a, b ace) int { return a.seq - b.seq })
				for i := range acl {
					acl[i].seq = start + i*step
				}
			case l == fam.header:
				in = true
			case in && strings.HasPrefix(l, " no "):
				line := strings.TrimPrefix(l, " no ")
				acl = slices.DeleteFunc(acl, func(a ace) bool { return a.line == line })
			case in && strings.HasPrefix(l, " "+fam.seqKw):
				var seq int
				rest := strings.TrimPrefix(l, " "+fam.seqKw)
				fmt.Sscanf(rest, "%d", &seq)
				_, line, _ := strings.Cut(rest, " ")
				for _, a := range acl {
					if a.seq == seq {
						t.Fatalf("%s: sequence %d already used", fam.header, seq)
					}
				}
				acl = append(acl, ace{seq, line})
			default:
				in = false
			}
		}
		slices.SortFunc(acl, func(a, b ace) int { return a.seq - b.seq })
		var got []string
		for _, a := range acl {
			got = append(got, a.line)
		}
		want := aclLines(string(render(t, neu, RenderOptions{Vendor: "cisco-ios"})), fam.header)
		if len(got) == 0 || got[len(got)-1] != want[len(want)-1] || !mapsEqual(toSet(got), toSet(want)) {
			t.Errorf("%s after the commands:\n%v\nwant (any order, permit last):\n%v\ncommands:\n%s", fam.header, got, want, cmds)
		}
	}
}

func toSet(l []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range l {
		m[x] = true
	}
	return m
}

// TestIncrementalGolden pins the incremental commands of every vendor for
// a set of changes (testdata/incremental/<vendor>.txt; go test ./filters
// -run TestIncrementalGolden -update rewrites them): a registry change
// and its reverse, no change, and a change to and from an empty Intent
// (which some vendors can only apply as a full replace).
func TestIncrementalGolden(t *testing.T) {
	small, changed, empty := smallIntent(t), changedIntent(t), emptyIntent()
	cases := []struct {
		name     string
		old, new *policy.Intent
		names    Names
	}{
		{"registry change", small, changed, Names{}},
		{"reverse change", changed, small, Names{}},
		{"no change", small, smallIntent(t), Names{}},
		{"to empty", small, empty, Names{}},
		{"from empty", empty, small, Names{}},
		{"registry change, own names", small, changed, Names{PrefixV4: "P4", PrefixV6: "P6", ASPath: "AP", Policy: "POL", ACLV4: "A4", ACLV6: "A6"}},
	}
	for _, v := range Vendors() {
		t.Run(v, func(t *testing.T) {
			var got strings.Builder
			for _, c := range cases {
				up, err := IncrementalCommands(v, c.old, c.new, RenderOptions{Names: c.names})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				ok, cmds := up.FullReplace == "", up.Commands
				if !ok {
					cmds = "full replace: " + up.FullReplace
				}
				fmt.Fprintf(&got, "=== %s (incremental: %v)\n%s", c.name, ok, cmds)
				if !strings.HasSuffix(cmds, "\n") {
					got.WriteString("\n")
				}
			}
			path := filepath.Join("testdata", "incremental", v+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run: go test ./filters -run TestIncrementalGolden -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("%s differs from %s:\n%s", v, path, UnifiedDiff(path, "generated", want, []byte(got.String())))
			}
		})
	}
}

// TestIncrementalTemplatesDir: templates_dir replaces an incremental
// template like a full one, and the replacement may ask for a full
// replace.
func TestIncrementalTemplatesDir(t *testing.T) {
	old, neu := smallIntent(t), changedIntent(t)
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "frr.incremental.tmpl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("{{range .V4.Added}}+{{.Str}}\n{{end}}{{range .V4.Removed}}-{{.Str}}\n{{end}}")
	up, err := IncrementalCommands("frr", old, neu, RenderOptions{TemplatesDir: dir})
	want := "+71.18.248.0/23 ge 24 le 32\n+101.45.200.0/24 le 32\n-71.18.247.0/24 le 32\n-71.18.248.0/24 le 32\n"
	if err != nil || up.Commands != want || up.FullReplace != "" {
		t.Errorf("override: %v %+v, want commands %q", err, up, want)
	}
	write(`{{if .ASNs.Changed}}{{fullReplace "origins changed"}}{{end}}`)
	if up, err := IncrementalCommands("frr", old, neu, RenderOptions{TemplatesDir: dir}); err != nil || up != (Update{FullReplace: "origins changed"}) {
		t.Errorf("override asking for a full replace: %v %+v", err, up)
	}
	// Vendors without an override keep the embedded template.
	if up, err := IncrementalCommands("junos", old, neu, RenderOptions{TemplatesDir: dir}); err != nil || !strings.Contains(up.Commands, "set policy-options") {
		t.Errorf("junos without override: %v %+v", err, up)
	}
	write("{{.Nope}}")
	if _, err := IncrementalCommands("frr", old, neu, RenderOptions{TemplatesDir: dir}); err == nil || !strings.Contains(err.Error(), "frr.incremental.tmpl") {
		t.Errorf("broken override: %v", err)
	}
}
