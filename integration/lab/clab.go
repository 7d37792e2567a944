package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

// Topology is a containerlab topology file brought up without Docker: one
// network namespace per node, one veth pair per link (with the interface
// names of the file), each node's sysctls set, its cmd started and its exec
// commands run inside its namespace, in containerlab's order. What a user deploys with
// containerlab is thus exactly what the tests run.
//
// The directory holding the file is copied first, so a test may change a
// node's files (registry data, say) without touching the repository or
// other labs. Container paths named by a node's binds point at the copied
// files; /run, /var/run, /var/lib and /var/log go to a per-node directory,
// as each container has its own. (The image is the user's: nodes run this
// machine's programs.) The file may use only what can be built this way:
// kind linux nodes with image, binds, env, sysctls, exec and cmd, and
// point-to-point links; anything else fails the test.
type Topology struct {
	Name string
	// Dir is the copy of the topology's directory.
	Dir   string
	Nodes map[string]*ClabNode
}

// ClabNode is one node.
type ClabNode struct {
	Name  string
	Netns string
	// Dir holds the node's private /run (Dir/run) and /var/lib.
	Dir string
	// Cmd is the node's command (paths translated, commands substituted).
	Cmd []string

	t     testing.TB
	root  string // the lab's directory: paths under it are host paths already
	env   []string
	binds [][2]string // container path, host path
	proc  *process
	runs  int
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
	Kind    string            `yaml:"kind"`
	Image   string            `yaml:"image"`
	Binds   []string          `yaml:"binds"`
	Env     map[string]string `yaml:"env"`
	Sysctls map[string]string `yaml:"sysctls"`
	Exec    []string          `yaml:"exec"`
	Cmd     string            `yaml:"cmd"`
}

// parseClab reads a topology file, refusing what Containerlab cannot build.
func parseClab(data []byte, file string) (*clabFile, error) {
	var cf clabFile
	data = []byte(expandEnv(string(data)))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a key the harness does not build is an error
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w (the namespace harness builds kind linux nodes with image, binds, env, sysctls, exec and cmd, and links)", file, err)
	}
	if cf.Name == "" || len(cf.Topology.Nodes) == 0 {
		return nil, fmt.Errorf("%s: want a name and at least one node", file)
	}
	for name, def := range cf.Topology.Nodes {
		kind := def.Kind
		if kind == "" {
			kind = cf.Topology.Defaults.Kind
		}
		if kind != "linux" {
			return nil, fmt.Errorf("%s: node %s: kind %q (only linux nodes are built without Docker)", file, name, kind)
		}
		if _, err := shellSplit(def.Cmd); err != nil {
			return nil, fmt.Errorf("%s: node %s: cmd: %w", file, name, err)
		}
		for _, e := range def.Exec {
			if args, err := shellSplit(e); err != nil || len(args) == 0 {
				return nil, fmt.Errorf("%s: node %s: exec %q: %v", file, name, e, err)
			}
		}
		for _, b := range def.Binds {
			if parts := strings.Split(b, ":"); len(parts) < 2 || len(parts) > 3 || !filepath.IsAbs(parts[1]) {
				return nil, fmt.Errorf("%s: node %s: bind %q: want host:container[:mode] with an absolute container path", file, name, b)
			}
		}
	}
	for i, l := range cf.Topology.Links {
		if len(l.Endpoints) != 2 {
			return nil, fmt.Errorf("%s: links[%d]: want two endpoints", file, i)
		}
		for _, ep := range l.Endpoints {
			node, ifname, ok := strings.Cut(ep, ":")
			if _, known := cf.Topology.Nodes[node]; !ok || !known || ifname == "" {
				return nil, fmt.Errorf("%s: links[%d]: endpoint %q: want node:interface of a node in the file", file, i, ep)
			}
		}
	}
	return &cf, nil
}

// Containerlab brings up the topology in file. commands maps a command name
// a node runs (e.g. "asfence") to the binary to run for it here (the one
// built by the test): they are put first on every node's PATH, as the lab
// image has them in /usr/local/bin; other commands come from this
// machine's PATH. Everything is removed at cleanup, also when the test
// fails.
func Containerlab(t testing.TB, file string, commands map[string]string) *Topology {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("lab: containerlab topologies need root (network namespaces)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	cf, err := parseClab(data, file)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	root := Dir(t)
	topo := &Topology{Name: cf.Name, Dir: filepath.Join(root, "topology"), Nodes: map[string]*ClabNode{}}
	if err := copyTree(filepath.Dir(file), topo.Dir); err != nil {
		t.Fatalf("lab: copy %s: %v", filepath.Dir(file), err)
	}
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	for name, bin := range commands {
		if err := os.Symlink(bin, filepath.Join(binDir, name)); err != nil {
			t.Fatalf("lab: %v", err)
		}
	}
	pathEnv := "PATH=" + binDir + ":" + os.Getenv("PATH")
	ctx := context.Background()
	base := RandomName("cl")
	names := make([]string, 0, len(cf.Topology.Nodes))
	for name := range cf.Topology.Nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	defs := map[string]clabNodeDef{}
	for i, name := range names {
		def := cf.Topology.Nodes[name]
		n := &ClabNode{Name: name, Netns: fmt.Sprintf("%s-%d", base, i), Dir: filepath.Join(root, "node-"+name), t: t, root: root}
		for _, d := range []string{"run", "var/lib", "var/log"} {
			if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
				t.Fatalf("lab: %v", err)
			}
		}
		for _, b := range def.Binds {
			parts := strings.Split(b, ":")
			src := parts[0]
			if !filepath.IsAbs(src) {
				src = filepath.Join(topo.Dir, src)
			}
			if _, err := os.Stat(src); err != nil {
				t.Fatalf("lab: %s: node %s: bind %q: %v", file, name, b, err)
			}
			n.binds = append(n.binds, [2]string{filepath.Clean(parts[1]), src})
		}
		for k, v := range def.Env {
			n.env = append(n.env, k+"="+v)
		}
		slices.Sort(n.env)
		n.env = append(n.env, pathEnv)
		if _, err := run(ctx, "", "ip", "netns", "add", n.Netns); err != nil {
			t.Fatalf("lab: %v", err)
		}
		ns := n.Netns
		t.Cleanup(func() { deleteNetns(ns) })
		if _, err := run(ctx, "", "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatalf("lab: %v", err)
		}
		topo.Nodes[name] = n
		defs[name] = def
	}
	for _, name := range names {
		n, def := topo.Nodes[name], defs[name]
		keys := make([]string, 0, len(def.Sysctls))
		for k := range def.Sysctls {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
			if _, err := run(ctx, n.Netns, "sh", "-c", fmt.Sprintf("echo %s > %s", def.Sysctls[k], path)); err != nil {
				t.Fatalf("lab: node %s: sysctl %s: %v", name, k, err)
			}
		}
	}
	// In containerlab order: sysctls are set when the container is made,
	// its cmd starts before the links are attached and before exec (so a
	// daemon must cope with interfaces and addresses appearing later).
	for _, name := range names {
		n := topo.Nodes[name]
		args, _ := shellSplit(defs[name].Cmd)
		if len(args) == 0 {
			continue
		}
		n.Cmd = n.translateAll(args)
		n.Start()
	}
	for i, l := range cf.Topology.Links {
		var ns, ifs [2]string
		for j, ep := range l.Endpoints {
			node, ifname, _ := strings.Cut(ep, ":")
			ns[j], ifs[j] = topo.Nodes[node].Netns, ifname
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
	// exec runs once the links are there.
	for _, name := range names {
		n := topo.Nodes[name]
		for _, e := range defs[name].Exec {
			args, _ := shellSplit(e)
			args = n.translateAll(args)
			if args[0] == "ip" && !slices.Contains(args, "nodad") && slices.Contains(args, "-6") && slices.Contains(args, "add") {
				args = append(args, "nodad") // a tentative address cannot be bound yet
			}
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Netns}, args...)...)
			cmd.Env = append(os.Environ(), n.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("lab: node %s: exec %q: %v: %s", name, e, err, out)
			}
		}
	}
	return topo
}

// translate maps a container path (or a shell snippet holding such paths)
// to the host: binds first, then the node's private directories.
func (n *ClabNode) translate(s string) string {
	if strings.HasPrefix(s, n.root+"/") {
		return s
	}
	switch s {
	case "/run", "/var/run":
		return filepath.Join(n.Dir, "run")
	}
	pairs := make([]string, 0, 2*len(n.binds)+8)
	for _, b := range n.binds {
		pairs = append(pairs, b[0], b[1])
	}
	run := filepath.Join(n.Dir, "run")
	pairs = append(pairs, "/var/run/", run+"/", "/run/", run+"/", "/var/lib/", filepath.Join(n.Dir, "var/lib")+"/",
		"/var/log/", filepath.Join(n.Dir, "var/log")+"/")
	return strings.NewReplacer(pairs...).Replace(s)
}

func (n *ClabNode) translateAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = n.translate(a)
	}
	return out
}

// HostPath is where the node's container path is on this machine.
func (n *ClabNode) HostPath(containerPath string) string { return n.translate(containerPath) }

// Start starts the node's cmd.
func (n *ClabNode) Start() {
	n.t.Helper()
	if n.proc != nil {
		if ok, _ := n.proc.exited(); !ok {
			n.t.Fatalf("lab: node %s: still running", n.Name)
		}
	}
	n.runs++
	cmd := command(n.Netns, n.Cmd[0], n.Cmd[1:]...)
	cmd.Env = append(os.Environ(), n.env...)
	n.proc = start(n.t, "node "+n.Name, cmd, filepath.Join(n.Dir, fmt.Sprintf("node-%d.log", n.runs)))
}

// Restart kills everything the node runs (SIGKILL: a crashed container)
// and starts its cmd again, with its links, addresses and files kept, as
// containerlab's restart does.
func (n *ClabNode) Restart(ctx context.Context) error {
	if _, err := killNetns(ctx, n.Netns, func(int) bool { return true }); err != nil {
		return err
	}
	if n.proc != nil {
		<-n.proc.done
	}
	n.Start()
	return nil
}

// KillProcess sends SIGKILL to every process named comm in the node (a
// crash of one program inside the container, as docker exec pkill -9 -x
// would) and returns how many there were.
func (n *ClabNode) KillProcess(ctx context.Context, comm string) (int, error) {
	return killNetns(ctx, n.Netns, func(pid int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return err == nil && strings.TrimSpace(string(b)) == comm
	})
}

// Signal sends sig to the node's cmd (docker kill -s).
func (n *ClabNode) Signal(sig os.Signal) error {
	if n.proc == nil {
		return errors.New("no command")
	}
	return n.proc.cmd.Process.Signal(sig)
}

// Exited reports whether the node's cmd has ended, with its error.
func (n *ClabNode) Exited() (bool, error) {
	if n.proc == nil {
		return true, nil
	}
	return n.proc.exited()
}

// Log returns the output of the node's cmd since its last start.
func (n *ClabNode) Log() string {
	if n.proc == nil {
		return ""
	}
	return n.proc.log()
}

// Exec runs a command inside the node's namespace (like docker exec), with
// the node's paths translated in every argument, and returns its output.
func (n *ClabNode) Exec(ctx context.Context, name string, args ...string) (string, error) {
	out, err := run(ctx, n.Netns, name, n.translateAll(args)...)
	return string(out), err
}

// DialContext connects from inside the node's namespace (for clients in
// the test process, e.g. an HTTP client for the node's API).
func (n *ClabNode) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The socket keeps the namespace it was made in. The thread goes
		// back to its own namespace before it is unlocked; were it left to
		// end instead, children it had started (lab daemons, with
		// Pdeathsig) would be killed with it.
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer unix.Close(self)
		fd, err := unix.Open("/run/netns/"+n.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("netns %s: %w", n.Netns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("setns %s: %w", n.Netns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm()|0o444)
	})
}

// expandEnv expands environment variables in a topology file as
// containerlab does before reading it: $VAR, ${VAR} and ${VAR:-default}
// from the environment, and $$ for a literal $ (what a shell in a node's
// cmd or exec must see as $).
func expandEnv(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			if v, ok := os.LookupEnv(name); ok && (v != "" || !hasDef) {
				b.WriteString(v)
			} else {
				b.WriteString(def)
			}
			i += end
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			b.WriteString(os.Getenv(s[i+1 : j]))
			i = j - 1
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// shellSplit splits a command line as a POSIX shell would split words
// (single and double quotes, backslash escapes; no expansions), as
// containerlab does for cmd and exec.
func shellSplit(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// BIRD reads the BIRD a node runs (control socket at the container path
// sock) through the Peer readers: Routes, Count. Its protocols are the
// node's own, so Session is not available.
func (n *ClabNode) BIRD(sock string) *BIRD {
	return &BIRD{daemon: daemon{proc: n.proc}, dir: n.Dir, sock: n.translate(sock)}
}

// FRR reads the FRR a node runs (vty sockets in the container directory
// vtyDir) through the Peer readers.
func (n *ClabNode) FRR(vtyDir string) *FRR {
	return &FRR{daemon: daemon{proc: n.proc}, dir: n.translate(vtyDir)}
}
