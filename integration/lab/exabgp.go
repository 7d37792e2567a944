package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ExaBGP is a running ExaBGP. It keeps no RIB of its own: an API process
// writes every message it receives to a JSON-lines file, and the readers
// replay that file (announce, withdraw, session up/down).
type ExaBGP struct {
	daemon
	dir     string
	updates string
}

const exabgpDump = `#!/usr/bin/python3
import sys
# stdout is ExaBGP's command channel: write to the file only.
with open(sys.argv[1], "a", buffering=1) as out:
    for line in sys.stdin:
        out.write(line)
`

// StartExaBGP starts ExaBGP with one neighbor per session. Passive
// sessions are accepted on Addr:Port. Extra is appended to the config.
func StartExaBGP(t testing.TB, cfg Config) *ExaBGP {
	t.Helper()
	Require(t, "exabgp")
	cfg.fill(t)
	d := Dir(t)
	e := &ExaBGP{daemon: daemon{cfg: cfg}, dir: d, updates: filepath.Join(d, "updates.jsonl")}
	if err := os.WriteFile(filepath.Join(d, "dump.py"), []byte(exabgpDump), 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := os.WriteFile(e.updates, nil, 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	conf := filepath.Join(d, "exabgp.conf")
	if err := os.WriteFile(conf, []byte(e.config()), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	// ExaBGP drops privileges to its user unless told otherwise, then
	// cannot write its files and exits silently.
	cmd := command(cfg.Netns, "env", "exabgp.daemon.user=root", "exabgp.api.cli=false",
		"exabgp.daemon.pid="+filepath.Join(d, "exabgp.pid"), "exabgp.log.level=INFO",
		"exabgp.tcp.bind="+cfg.Addr.String(), fmt.Sprintf("exabgp.tcp.port=%d", cfg.Port),
		"exabgp", conf)
	e.proc = start(t, "exabgp", cmd, filepath.Join(d, "exabgp.log"))
	// ExaBGP has no control channel here: wait until it has bound its port.
	e.waitReady(t, "exabgp", startTimeout, func(ctx context.Context) error {
		if _, err := os.Stat(filepath.Join(d, "exabgp.pid")); err != nil {
			return fmt.Errorf("exabgp: no pid file yet")
		}
		return nil
	})
	return e
}

func (e *ExaBGP) config() string {
	var w strings.Builder
	fmt.Fprintf(&w, "process dump {\n  run %s %s;\n  encoder json;\n}\n", filepath.Join(e.dir, "dump.py"), e.updates)
	names := map[Family]string{IPv4Unicast: "ipv4 unicast", IPv6Unicast: "ipv6 unicast", IPv4FlowSpec: "ipv4 flow", IPv6FlowSpec: "ipv6 flow"}
	for _, s := range e.cfg.Sessions {
		fmt.Fprintf(&w, "neighbor %s {\n  router-id %s;\n  local-address %s;\n  local-as %d;\n  peer-as %d;\n  hold-time 90;\n",
			s.Addr, e.cfg.RouterID, e.cfg.Addr, e.cfg.ASN, s.ASN)
		if s.Description != "" {
			fmt.Fprintf(&w, "  description %q;\n", s.Description)
		}
		if s.Passive {
			fmt.Fprintf(&w, "  passive;\n  listen %d;\n", e.cfg.Port)
		} else {
			fmt.Fprintf(&w, "  connect %d;\n", s.port())
		}
		w.WriteString("  family {\n")
		for _, f := range s.families() {
			fmt.Fprintf(&w, "    %s;\n", names[f])
		}
		w.WriteString("  }\n  api {\n    processes [ dump ];\n    neighbor-changes;\n    receive { parsed; update; }\n  }\n}\n")
	}
	w.WriteString(e.cfg.Extra)
	return w.String()
}

// Name implements Peer.
func (e *ExaBGP) Name() string { return "exabgp" }

// UpdatesFile is the JSON-lines file of received messages.
func (e *ExaBGP) UpdatesFile() string { return e.updates }

// exaState is the replayed content of the updates file.
type exaState struct {
	states  map[string][]string // neighbor -> state events in order
	upAt    map[string]time.Time
	routes  map[Family]map[string]Route // key: neighbor + " " + Route.Key()
	updates int
}

type exaMessage struct {
	Time     float64 `json:"time"`
	Type     string  `json:"type"`
	Neighbor struct {
		Address struct {
			Peer string `json:"peer"`
		} `json:"address"`
		State   string `json:"state"`
		Message struct {
			Update *struct {
				Attribute map[string]json.RawMessage              `json:"attribute"`
				Announce  map[string]map[string][]json.RawMessage `json:"announce"`
				Withdraw  map[string][]json.RawMessage            `json:"withdraw"`
			} `json:"update"`
		} `json:"message"`
	} `json:"neighbor"`
}

var exaFamilies = map[string]Family{"ipv4 unicast": IPv4Unicast, "ipv6 unicast": IPv6Unicast, "ipv4 flow": IPv4FlowSpec, "ipv6 flow": IPv6FlowSpec}

func (e *ExaBGP) replay() (*exaState, error) {
	f, err := os.Open(e.updates)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &exaState{states: map[string][]string{}, upAt: map[string]time.Time{}, routes: map[Family]map[string]Route{}}
	for _, fam := range AllFamilies {
		st.routes[fam] = map[string]Route{}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[len(line)-1] != '}' {
			continue // a line still being written
		}
		var m exaMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("exabgp: %s: %v", tail(string(line), 200), err)
		}
		peer := m.Neighbor.Address.Peer
		switch m.Type {
		case "state":
			st.states[peer] = append(st.states[peer], m.Neighbor.State)
			if m.Neighbor.State == "up" {
				st.upAt[peer] = time.UnixMicro(int64(m.Time * 1e6))
			}
			if m.Neighbor.State == "down" {
				for _, fam := range AllFamilies {
					for k := range st.routes[fam] {
						if strings.HasPrefix(k, peer+" ") {
							delete(st.routes[fam], k)
						}
					}
				}
			}
		case "update":
			u := m.Neighbor.Message.Update
			if u == nil {
				continue
			}
			st.updates++
			for famName, nlris := range u.Withdraw {
				fam, ok := exaFamilies[famName]
				if !ok {
					continue
				}
				for _, raw := range nlris {
					r, err := exaNLRI(fam, raw)
					if err != nil {
						return nil, err
					}
					delete(st.routes[fam], peer+" "+r.Key())
				}
			}
			for famName, byNH := range u.Announce {
				fam, ok := exaFamilies[famName]
				if !ok {
					continue
				}
				for nh, nlris := range byNH {
					for _, raw := range nlris {
						r, err := exaNLRI(fam, raw)
						if err != nil {
							return nil, err
						}
						r.NextHop, _ = netip.ParseAddr(nh)
						if err := exaAttributes(u.Attribute, &r); err != nil {
							return nil, err
						}
						st.routes[fam][peer+" "+r.Key()] = r
					}
				}
			}
		}
	}
	return st, sc.Err()
}

// exaNLRI decodes {"nlri": "20.0.1.0/24"} or a flow
// {"destination-ipv4": ["20.0.1.0/24"], "source-ipv6": ["2a00:1::/32/0"], ...}.
func exaNLRI(fam Family, raw json.RawMessage) (Route, error) {
	r := Route{Family: fam}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return r, fmt.Errorf("exabgp: nlri %s: %v", raw, err)
	}
	if fam.Unicast() {
		s, _ := m["nlri"].(string)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return r, fmt.Errorf("exabgp: nlri %s: %v", raw, err)
		}
		r.Prefix = p
		return r, nil
	}
	fl := &Flow{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == "string":
		case strings.HasPrefix(k, "destination-ipv"), strings.HasPrefix(k, "source-ipv"):
			l, _ := m[k].([]any)
			if len(l) != 1 {
				return r, fmt.Errorf("exabgp: flow %s: %s", raw, k)
			}
			s, _ := l[0].(string)
			if strings.Count(s, "/") == 2 { // IPv6 "prefix/len/offset"
				s = s[:strings.LastIndex(s, "/")]
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return r, fmt.Errorf("exabgp: flow %s: %v", raw, err)
			}
			if strings.HasPrefix(k, "destination") {
				fl.Dst = p
			} else {
				fl.Src = p
			}
		default:
			fl.Other = append(fl.Other, fmt.Sprintf("%s %v", k, m[k]))
		}
	}
	r.Flow = fl
	return r, nil
}

func exaAttributes(attrs map[string]json.RawMessage, r *Route) error {
	for k, v := range attrs {
		var err error
		switch k {
		case "as-path":
			err = json.Unmarshal(v, &r.ASPath)
		case "community":
			var cs [][2]uint32
			if err = json.Unmarshal(v, &cs); err == nil {
				for _, c := range cs {
					r.Communities = append(r.Communities, fmt.Sprintf("%d:%d", c[0], c[1]))
				}
			}
		case "large-community":
			var ls [][3]uint32
			if err = json.Unmarshal(v, &ls); err == nil {
				for _, l := range ls {
					r.LargeCommunities = append(r.LargeCommunities, fmt.Sprintf("%d:%d:%d", l[0], l[1], l[2]))
				}
			}
		case "extended-community":
			var es []struct {
				Value uint64 `json:"value"`
			}
			if err = json.Unmarshal(v, &es); err == nil {
				for _, e := range es {
					r.Actions = append(r.Actions, extAction(e.Value))
				}
			}
		}
		if err != nil {
			return fmt.Errorf("exabgp: attribute %s %s: %v", k, v, err)
		}
	}
	r.Communities = sortedUnique(r.Communities)
	r.LargeCommunities = sortedUnique(r.LargeCommunities)
	return nil
}

// Session implements Peer: from the state events; Ups counts "up" events
// and Since is when the last one was written.
func (e *ExaBGP) Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error) {
	st, err := e.replay()
	if err != nil {
		return SessionInfo{}, err
	}
	ev := st.states[neighbor.String()]
	si := SessionInfo{State: "idle", Precision: time.Millisecond}
	for _, s := range ev {
		if s == "up" {
			si.Ups++
		}
	}
	if len(ev) > 0 {
		si.State = ev[len(ev)-1]
	}
	si.Established = si.State == "up"
	if si.Established {
		si.Since = st.upAt[neighbor.String()]
	}
	return si, nil
}

// Count implements Peer.
func (e *ExaBGP) Count(ctx context.Context, f Family) (int, error) {
	st, err := e.replay()
	if err != nil {
		return 0, err
	}
	return len(st.routes[f]), nil
}

// Routes implements Peer.
func (e *ExaBGP) Routes(ctx context.Context, f Family) ([]Route, error) {
	st, err := e.replay()
	if err != nil {
		return nil, err
	}
	rs := make([]Route, 0, len(st.routes[f]))
	for _, r := range st.routes[f] {
		rs = append(rs, r)
	}
	return rs, nil
}

// Updates returns how many UPDATE messages ExaBGP has received.
func (e *ExaBGP) Updates(ctx context.Context) (int, error) {
	st, err := e.replay()
	if err != nil {
		return 0, err
	}
	return st.updates, nil
}
