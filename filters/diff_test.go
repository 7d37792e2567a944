package filters

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asfence/asfence/policy"
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
		if patchTool != "" && seed%5 == 0 {
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

// TestUnifiedDiffRenderedFiles diffs every vendor's file for a registry
// change (and for a change to an empty Intent) and applies the diff with
// the real patch tool: the result is the new file, byte for byte.
func TestUnifiedDiffRenderedFiles(t *testing.T) {
	patchTool := needTool(t, "patch", "/usr/bin/patch")
	old := smallIntent(t)
	for name, neu := range map[string]*policy.Intent{"change": changedIntent(t), "to empty": emptyIntent()} {
		for _, v := range Vendors() {
			a, b := render(t, old, goldenOptions(v)), render(t, neu, goldenOptions(v))
			d := UnifiedDiff("old/"+FileName(v), "new/"+FileName(v), a, b)
			if !strings.HasPrefix(d, "--- old/"+FileName(v)+"\n+++ new/"+FileName(v)+"\n@@ -") {
				t.Fatalf("%s %s: not a unified diff:\n%.300s", name, v, d)
			}
			f := filepath.Join(t.TempDir(), FileName(v))
			if err := os.WriteFile(f, a, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(patchTool, "-s", "-f", f)
			cmd.Stdin = strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: patch: %v %s\n%s", name, v, err, out, d)
			}
			if got, _ := os.ReadFile(f); !bytes.Equal(got, b) {
				t.Errorf("%s %s: patch gives a different file:\n%s", name, v, UnifiedDiff("patched", "new", got, b))
			}
		}
	}
	if d := UnifiedDiff("a", "b", render(t, old, goldenOptions("junos")), render(t, smallIntent(t), goldenOptions("junos"))); d != "" {
		t.Errorf("equal files: diff %q", d)
	}
}
