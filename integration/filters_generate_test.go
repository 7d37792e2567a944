package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/filters"
	"github.com/asfence/asfence/integration/lab"
)

// TestGenerateAllAcceptedByParsers builds the asfence binary, runs
// `asfence generate --vendor all --offline --out DIR`, and hands the files
// to the real parsers installed here: bird -p (inside a minimal config that
// includes the file and uses its filter), vtysh -C and bgpd -C (FRR),
// bgpd -n (OpenBGPD, with an include), nft -c (in a fresh network
// namespace). A rejected file fails with the parser's message.
func TestGenerateAllAcceptedByParsers(t *testing.T) {
	lab.Short(t)
	lab.Require(t, "bird", "vtysh", lab.FRRBgpd, "/usr/sbin/bgpd", "nft", "unshare")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := lab.Dir(t)
	bin := filepath.Join(dir, "asfence")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/asfence").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	outDir := filepath.Join(dir, "out")
	cmd := exec.CommandContext(ctx, bin, "generate", "--vendor", "all", "--offline", "--out", outDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("asfence generate: %v\n%s", err, stderr.String())
	}
	for _, v := range filters.Vendors() {
		st, err := os.Stat(filepath.Join(outDir, filters.FileName(v)))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (size %v)", v, err, st)
		}
	}
	entries, _ := os.ReadDir(outDir)
	if len(entries) != 12 {
		t.Errorf("%d files in the output directory, want 12 (no temporary files left)", len(entries))
	}
	file := func(v string) string { return filepath.Join(outDir, filters.FileName(v)) }
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy := filters.DefaultNames.Policy
	checks := []struct {
		vendor string
		argv   []string
		silent bool // the tool exits 0 on errors: any output fails
	}{
		{"bird", []string{"bird", "-p", "-c", write("bird.conf", fmt.Sprintf(
			"router id 192.0.2.1;\ninclude %q;\nprotocol device { }\n"+
				"protocol static s4 { ipv4 { import filter %s; }; route 198.51.100.0/24 blackhole; }\n"+
				"protocol static s6 { ipv6 { import filter %s; }; route 2001:db8::/32 blackhole; }\n",
			file("bird"), strings.ReplaceAll(policy, "-", "_"), strings.ReplaceAll(policy, "-", "_")))}, false},
		{"frr", []string{"vtysh", "-C", "-f", file("frr")}, false},
		{"frr", []string{lab.FRRBgpd, "-C", "-Z", "-S", "-P", "0", "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir,
			"-f", write("frr-bgpd.conf", fltReadFile(t, file("frr"))+fmt.Sprintf(
				"router bgp 65001\n neighbor 192.0.2.2 remote-as 65002\n address-family ipv4 unicast\n  neighbor 192.0.2.2 route-map %s in\n exit-address-family\nexit\n", policy))}, true},
		{"openbgpd", []string{"/usr/sbin/bgpd", "-n", "-f", write("openbgpd.conf", fmt.Sprintf(
			"AS 65001\nrouter-id 192.0.2.1\nfib-update no\nneighbor 192.0.2.2 {\n\tremote-as 65002\n}\nallow from any\nallow to any\ninclude %q\n", file("openbgpd")))}, false},
		{"nftables", []string{"unshare", "-n", "nft", "-c", "-f", file("nftables")}, false},
	}
	for _, c := range checks {
		cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
		out, err := cmd.CombinedOutput()
		if cmd.Process != nil {
			lab.ForgetFRRTmp(cmd.Process.Pid)
		}
		if err != nil || (c.silent && strings.TrimSpace(string(out)) != "") {
			t.Errorf("%s: %s rejects the generated file: %v\n%s", c.vendor, c.argv[0], err, out)
		}
	}
	if !strings.Contains(stderr.String(), "wrote "+file("junos")) {
		t.Errorf("summary does not list the files:\n%s", stderr.String())
	}
}

func fltReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
