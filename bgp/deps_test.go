package bgp

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const module = "github.com/asfence/asfence"

// renderingDeps lists what makes pkg (a package pattern for go list)
// depend on rendering: the renderer and its templates among its
// dependencies, and packages of this module that import a template
// engine. (text/template is in the dependencies anyway: GoBGP's gRPC
// server brings golang.org/x/net/trace, which uses html/template.)
func renderingDeps(t *testing.T, pkg string) (bad []string) {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		path, imports := f[0], f[1:]
		if path == module+"/filters" || path == module+"/templates" {
			bad = append(bad, path)
		}
		if !strings.HasPrefix(path, module+"/") {
			continue
		}
		for _, imp := range imports {
			if imp == "text/template" || imp == "html/template" {
				bad = append(bad, path+" imports "+imp)
			}
		}
	}
	return bad
}

// TestNoRenderingDependency: the speaker needs the Intent (policy) and
// the prefix algebra (prefixset) only, never the vendor renderer, its
// templates or a template engine of this module.
func TestNoRenderingDependency(t *testing.T) {
	if bad := renderingDeps(t, module+"/bgp"); len(bad) > 0 {
		t.Errorf("bgp depends on rendering: %v", bad)
	}
	// The check can fail: the renderer itself is caught.
	if bad := renderingDeps(t, module+"/filters"); !slices.Contains(bad, module+"/templates") || !slices.Contains(bad, module+"/filters imports text/template") {
		t.Errorf("the check misses the renderer's own dependencies: %v", bad)
	}
}
