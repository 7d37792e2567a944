package filters

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/internal/check"
	"github.com/asfence/asfence/policy"
	"github.com/asfence/asfence/prefixset"
)

// applyUnified applies a unified diff to a (an independent reader of the
// format, used with and without the real patch tool).
func applyUnified(t *testing.T, a []string, d string) []string {
	t.Helper()
	lines := strings.SplitAfter(d, "\n")
	var out []string
	pos := 0
	hunk := regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)
	for i := 2; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		m := hunk.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d: expected a hunk header, got %q", i, l)
		}
		start, _ := strconv.Atoi(m[1])
		if m[2] == "0" {
			start++ // "-N,0" names the line after which to insert
		}
		for pos < start-1 {
			out = append(out, a[pos])
			pos++
		}
		for i+1 < len(lines) && lines[i+1] != "" && !strings.HasPrefix(lines[i+1], "@@") {
			i++
			l := lines[i]
			if strings.HasPrefix(l, `\`) {
				out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], "\n")
				continue
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(a) || a[pos] != l[1:] {
					t.Fatalf("hunk does not apply at line %d: have %q, diff says %q", pos+1, at(a, pos), l[1:])
				}
				if l[0] == ' ' {
					out = append(out, a[pos])
				}
				pos++
			case '+':
				out = append(out, l[1:])
			default:
				t.Fatalf("bad diff line %q", l)
			}
		}
	}
	return append(out, a[pos:]...)
}

func at(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return "(end of file)"
}

func TestUnifiedDiffRandom(t *testing.T) {
	words := []string{"a\n", "b\n", "c\n", "!\n", "exit\n", "permit 1\n", "permit 2\n", "permit 3\n"}
	patchTool, _ := exec.LookPath("patch")
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 9))
		var a []string
		for range r.IntN(60) {
			if r.IntN(2) == 0 {
				a = append(a, words[r.IntN(len(words))])
			} else {
				a = append(a, fmt.Sprintf("line %d\n", r.IntN(1000)))
			}
		}
		b := slices.Clone(a)
		for range r.IntN(8) {
			switch i := r.IntN(len(b) + 1); r.IntN(3) {
			case 0:
				b = slices.Insert(b, i, fmt.Sprintf("new %d\n", r.IntN(100)))
			case 1:
				if i < len(b) {
					b = slices.Delete(b, i, i+1)
				}
			case 2:
				if i < len(b) {
					b[i] = words[r.IntN(len(words))]
				}
			}
		}
		if seed%7 == 0 && len(b) > 0 { // no newline at the end
			b[len(b)-1] = strings.TrimSuffix(b[len(b)-1], "\n")
		}
		ab, bb := []byte(strings.Join(a, "")), []byte(strings.Join(b, ""))
		d := UnifiedDiff("a", "b", ab, bb)
		if string(ab) == string(bb) {
			if d != "" {
				t.Fatalf("seed %d: equal inputs, diff %q", seed, d)
			}
			continue
		}
		if got := strings.Join(applyUnified(t, a, d), ""); got != string(bb) {
			t.Fatalf("seed %d: applying the diff gives\n%q\nwant\n%q\ndiff:\n%s", seed, got, bb, d)
		}
		if patchTool != "" && seed%10 == 0 {
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			if err := os.WriteFile(f, ab, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(patchTool, "-s", "-f", f)
			cmd.Stdin = strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("seed %d: patch: %v %s\n%s", seed, err, out, d)
			}
			if got, _ := os.ReadFile(f); string(got) != string(bb) {
				t.Fatalf("seed %d: patch result differs", seed)
			}
		}
	}
}

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
	var p check.Problems
	return policy.PolicyConfig{Protect: []string{"118.26.132.0/24"}}.Build("policy", &p).Apply(s)
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
			cmds, ok, err := IncrementalCommands(vendor, old, neu, RenderOptions{})
			if err != nil || !ok {
				t.Fatalf("ok %v err %v: %s", ok, err, cmds)
			}
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
		msg, ok, err := IncrementalCommands(v, old, neu, RenderOptions{})
		if err != nil || ok || !strings.HasPrefix(msg, "full replace: ") {
			t.Errorf("%s: %v %v %q", v, ok, err, msg)
		}
	}
	// A list becoming empty changes Junos policy terms: full replace.
	msg, ok, err := IncrementalCommands("junos", old, emptyIntent(), RenderOptions{})
	if err != nil || ok || !strings.Contains(msg, "became empty") {
		t.Errorf("junos to empty: %v %v %q", ok, err, msg)
	}
	// Nothing changed.
	msg, ok, err = IncrementalCommands("frr", old, smallIntent(t), RenderOptions{})
	if err != nil || !ok || !strings.Contains(msg, "nothing changed") {
		t.Errorf("unchanged: %v %v %q", ok, err, msg)
	}
	if _, _, err := IncrementalCommands("nosuch", old, neu, RenderOptions{}); err == nil {
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
	cmds, ok, err := IncrementalCommands("nftables", old, neu, RenderOptions{})
	if err != nil || !ok {
		t.Fatalf("%v %v %s", ok, err, cmds)
	}
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
	cmds, ok, err := IncrementalCommands("cisco-ios", old, neu, RenderOptions{})
	if err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
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
				cmds, ok, err := IncrementalCommands(v, c.old, c.new, RenderOptions{Names: c.names})
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
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
