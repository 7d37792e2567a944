package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Topology is a containerlab topology file brought up without Docker: one
// network namespace per node, one veth pair per link (with the interface
// names of the file), each node's exec commands run inside its namespace
// and its cmd started there. Container paths named by a node's binds point
// at the files next to the topology; other paths under /run and /var/run
// go to a per-node directory. What a user deploys with containerlab is thus
// exactly what the tests run.
type Topology struct {
	Name  string
	Nodes map[string]*ClabNode
}

// ClabNode is one running node.
type ClabNode struct {
	Name  string
	Netns string
	// Dir replaces the container's /run.
	Dir string
	// Cmd is the node's command as started (paths translated).
	Cmd  []string
	tr   *strings.Replacer
	proc *process
}

func (n *ClabNode) translate(s string) string {
	if s == "/run" || s == "/var/run" {
		return n.Dir
	}
	return n.tr.Replace(s)
}

// Log returns the node's output so far.
func (n *ClabNode) Log() string {
	if n.proc == nil {
		return ""
	}
	return n.proc.log()
}

type clabFile struct {
	Name     string `yaml:"name"`
	Topology struct {
		Defaults clabNodeDef            `yaml:"defaults"`
		Nodes    map[string]clabNodeDef `yaml:"nodes"`
		Links    []struct {
			Endpoints []string `yaml:"endpoints"`
		} `yaml:"links"`
	} `yaml:"topology"`
}

type clabNodeDef struct {
	Kind  string   `yaml:"kind"`
	Image string   `yaml:"image"`
	Binds []string `yaml:"binds"`
	Exec  []string `yaml:"exec"`
	Cmd   string   `yaml:"cmd"`
}

// Containerlab brings up the topology in file. commands maps a command name
// used in a node's cmd (e.g. "asfence") to the binary to run for it here
// (the one built by the test); other commands are taken from PATH, as in
// the lab image.
func Containerlab(t testing.TB, file string, commands map[string]string) *Topology {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("lab: containerlab topologies need root (network namespaces)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	var cf clabFile
	if err := yaml.Unmarshal(data, &cf); err != nil {
		t.Fatalf("lab: %s: %v", file, err)
	}
	dir := filepath.Dir(file)
	ctx := context.Background()
	topo := &Topology{Name: cf.Name, Nodes: map[string]*ClabNode{}}
	base := RandomName("cl")
	names := make([]string, 0, len(cf.Topology.Nodes))
	for name := range cf.Topology.Nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	type started struct {
		node *ClabNode
		def  clabNodeDef
	}
	var nodes []started
	for i, name := range names {
		def := cf.Topology.Nodes[name]
		if def.Kind == "" {
			def.Kind = cf.Topology.Defaults.Kind
		}
		if def.Kind != "linux" {
			t.Fatalf("lab: %s: node %s: kind %q (only linux nodes are built without Docker)", file, name, def.Kind)
		}
		n := &ClabNode{Name: name, Netns: fmt.Sprintf("%s-%d", base, i)}
		d, err := os.MkdirTemp("", "cl")
		if err != nil {
			t.Fatalf("lab: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		n.Dir = d
		var pairs []string
		for _, b := range def.Binds {
			parts := strings.Split(b, ":")
			if len(parts) < 2 {
				t.Fatalf("lab: %s: node %s: bind %q: want host:container[:mode]", file, name, b)
			}
			src := parts[0]
			if !filepath.IsAbs(src) {
				src = filepath.Join(dir, src)
			}
			pairs = append(pairs, parts[1], src)
		}
		pairs = append(pairs, "/var/run/", d+"/", "/run/", d+"/", "/run ", d+" ")
		n.tr = strings.NewReplacer(pairs...)
		if _, err := run(ctx, "", "ip", "netns", "add", n.Netns); err != nil {
			t.Fatalf("lab: %v", err)
		}
		ns := n.Netns
		t.Cleanup(func() { deleteNetns(ns) })
		if _, err := run(ctx, "", "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatalf("lab: %v", err)
		}
		topo.Nodes[name] = n
		nodes = append(nodes, started{n, def})
	}
	for i, l := range cf.Topology.Links {
		if len(l.Endpoints) != 2 {
			t.Fatalf("lab: %s: links[%d]: want two endpoints", file, i)
		}
		var ns, ifs [2]string
		for j, ep := range l.Endpoints {
			node, ifname, ok := strings.Cut(ep, ":")
			n := topo.Nodes[node]
			if !ok || n == nil {
				t.Fatalf("lab: %s: links[%d]: bad endpoint %q", file, i, ep)
			}
			ns[j], ifs[j] = n.Netns, ifname
		}
		if _, err := run(ctx, "", "ip", "link", "add", ifs[0], "netns", ns[0], "type", "veth", "peer", "name", ifs[1], "netns", ns[1]); err != nil {
			t.Fatalf("lab: links[%d]: %v", i, err)
		}
		for j := range 2 {
			if _, err := run(ctx, "", "ip", "-n", ns[j], "link", "set", ifs[j], "up"); err != nil {
				t.Fatalf("lab: links[%d]: %v", i, err)
			}
		}
	}
	// containerlab runs exec after the container starts; addresses first
	// here avoids a few failed connection attempts, nothing else changes.
	for _, s := range nodes {
		for _, e := range s.def.Exec {
			args := strings.Fields(s.node.translate(e))
			if len(args) > 0 && args[0] == "ip" && !slices.Contains(args, "nodad") && slices.Contains(args, "-6") {
				args = append(args, "nodad") // a tentative address cannot be bound yet
			}
			if _, err := run(ctx, s.node.Netns, args[0], args[1:]...); err != nil {
				t.Fatalf("lab: node %s: exec %q: %v", s.node.Name, e, err)
			}
		}
	}
	for _, s := range nodes {
		if s.def.Cmd == "" {
			continue
		}
		args := strings.Fields(s.node.translate(s.def.Cmd))
		if bin, ok := commands[args[0]]; ok {
			args[0] = bin
		} else if p, err := exec.LookPath(args[0]); err == nil {
			args[0] = p
		}
		s.node.Cmd = args
		s.node.proc = start(t, "node "+s.node.Name, command(s.node.Netns, args[0], args[1:]...), filepath.Join(s.node.Dir, "node.log"))
	}
	return topo
}

// Exec runs a command inside the node's namespace (like docker exec), with
// the node's paths translated in every argument, and returns its output.
func (n *ClabNode) Exec(ctx context.Context, name string, args ...string) (string, error) {
	for i := range args {
		args[i] = n.translate(args[i])
	}
	out, err := run(ctx, n.Netns, name, args...)
	return string(out), err
}
