package lab

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The topologies users deploy parse, and what the harness cannot build is
// refused with the place named.
func TestParseClab(t *testing.T) {
	for _, f := range []string{"../containerlab/asfence.clab.yml", "../containerlab/rtbh/rtbh.clab.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseClab(b, f); err != nil {
			t.Errorf("%v", err)
		}
	}
	bad := map[string]string{
		"kind":     "name: x\ntopology:\n  nodes:\n    r1:\n      kind: nokia_srlinux\n",
		"ports":    "name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n      ports: [\"80:80\"]\n",
		"mgmt":     "name: x\nmgmt:\n  network: m\ntopology:\n  nodes:\n    r1:\n      kind: linux\n",
		"endpoint": "name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n  links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n",
		"quote":    "name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n      cmd: sh -c \"echo\n",
		"bind":     "name: x\ntopology:\n  nodes:\n    r1:\n      kind: linux\n      binds: [\"a:relative\"]\n",
		"nodes":    "name: x\n",
	}
	for name, text := range bad {
		_, err := parseClab([]byte(text), "t.clab.yml")
		if err == nil || !strings.Contains(err.Error(), "t.clab.yml") {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("LAB_X", "x")
	t.Setenv("LAB_EMPTY", "")
	for in, want := range map[string]string{
		"a $LAB_X ${LAB_X} b":                         "a x x b",
		"$$i $$((i+1)) $$":                            "$i $((i+1)) $",
		"${LAB_UNSET:-d} ${LAB_EMPTY:-d} ${LAB_X:-d}": "d d x",
		"$LAB_UNSET. 5$ $1":                           ". 5$ $1",
	} {
		if got := expandEnv(in); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShellSplit(t *testing.T) {
	for in, want := range map[string][]string{
		`ip addr add 10.0.0.1/30 dev eth1`:      {"ip", "addr", "add", "10.0.0.1/30", "dev", "eth1"},
		`sh -c "a && exec b --x /run/frr"`:      {"sh", "-c", "a && exec b --x /run/frr"},
		`echo 'single "quoted"' x\ y "a\"b" ''`: {"echo", `single "quoted"`, "x y", `a"b`, ""},
		"  spaced\tout \n":                      {"spaced", "out"},
	} {
		got, err := shellSplit(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellSplit(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`a "b`, `a 'b`} {
		if _, err := shellSplit(in); err == nil {
			t.Errorf("shellSplit(%q): no error", in)
		}
	}
}
