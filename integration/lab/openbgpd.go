package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OpenBGPDBgpd is OpenBGPD's daemon; FRR's is also called bgpd.
const OpenBGPDBgpd = "/usr/sbin/bgpd"

// OpenBGPD is a running OpenBGPD (portable 7.x: unicast only, no FlowSpec).
type OpenBGPD struct {
	daemon
	dir  string
	sock string
}

// StartOpenBGPD starts OpenBGPD with one neighbor per session; FlowSpec
// families are left out (it has none). Filters accept everything from
// neighbors and send nothing, unless Extra (appended after the neighbors)
// says otherwise; Session.Import/Export are not used.
func StartOpenBGPD(t testing.TB, cfg Config) *OpenBGPD {
	t.Helper()
	Require(t, OpenBGPDBgpd, "bgpctl")
	cfg.fill(t)
	// The privilege-separated processes chroot here; one dir serves all.
	if err := os.MkdirAll("/run/openbgpd", 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	d := Dir(t)
	o := &OpenBGPD{daemon: daemon{cfg: cfg}, dir: d, sock: filepath.Join(d, "bgpd.sock")}
	conf := filepath.Join(d, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(o.config()), 0o600); err != nil {
		t.Fatalf("lab: %v", err)
	}
	if out, err := run(context.Background(), "", OpenBGPDBgpd, "-n", "-f", conf); err != nil {
		t.Fatalf("lab: openbgpd config rejected: %v\n%s", err, out)
	}
	cmd := command(cfg.Netns, OpenBGPDBgpd, "-d", "-f", conf)
	o.proc = start(t, "openbgpd", cmd, filepath.Join(d, "bgpd.log"))
	o.waitReady(t, "openbgpd", startTimeout, func(ctx context.Context) error {
		_, err := o.Cmd(ctx, "show")
		return err
	})
	return o
}

func (o *OpenBGPD) config() string {
	var w strings.Builder
	fmt.Fprintf(&w, "AS %d\nrouter-id %s\nsocket %q\nlisten on %s port %d\nfib-update no\n",
		o.cfg.ASN, o.cfg.RouterID, o.sock, o.cfg.Addr, o.cfg.Port)
	for _, s := range o.cfg.Sessions {
		fmt.Fprintf(&w, "neighbor %s {\n\tremote-as %d\n\tlocal-address %s\n\tport %d\n", s.Addr, s.ASN, o.cfg.Addr, s.port())
		if s.Description != "" {
			fmt.Fprintf(&w, "\tdescr %q\n", s.Description)
		}
		if s.Passive {
			w.WriteString("\tpassive\n")
		}
		if s.Addr.IsLoopback() && s.ASN != o.cfg.ASN {
			w.WriteString("\tmultihop 255\n")
		}
		for _, f := range s.families() {
			switch f {
			case IPv4Unicast:
				w.WriteString("\tannounce IPv4 unicast\n")
			case IPv6Unicast:
				w.WriteString("\tannounce IPv6 unicast\n")
			}
		}
		w.WriteString("}\n")
	}
	w.WriteString("allow from any\ndeny to any\n")
	w.WriteString(o.cfg.Extra)
	return w.String()
}

// Name implements Peer.
func (o *OpenBGPD) Name() string { return "openbgpd" }

// Cmd runs bgpctl against this daemon.
func (o *OpenBGPD) Cmd(ctx context.Context, args ...string) (string, error) {
	out, err := run(ctx, "", "bgpctl", append([]string{"-s", o.sock}, args...)...)
	return string(out), err
}

// Session implements Peer: Since is derived from "last_updown" and Ups is
// not reported (-1).
func (o *OpenBGPD) Session(ctx context.Context, neighbor netip.Addr) (SessionInfo, error) {
	out, err := o.Cmd(ctx, "-j", "show", "neighbor", neighbor.String())
	if err != nil {
		return SessionInfo{}, err
	}
	var v struct {
		Neighbors []struct {
			State         string `json:"state"`
			LastUpdownSec int64  `json:"last_updown_sec"`
		} `json:"neighbors"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return SessionInfo{}, fmt.Errorf("openbgpd: neighbor %s: %v: %s", neighbor, err, tail(out, 300))
	}
	if len(v.Neighbors) == 0 {
		return SessionInfo{}, fmt.Errorf("openbgpd: %w %s", errNoSession, neighbor)
	}
	n := v.Neighbors[0]
	si := SessionInfo{State: n.State, Established: n.State == "Established", Ups: -1, Precision: time.Second}
	if si.Established {
		si.Since = time.Now().Add(-time.Duration(n.LastUpdownSec) * time.Second).Truncate(time.Second)
	}
	return si, nil
}

func obgpFamily(f Family) (string, bool) {
	switch f {
	case IPv4Unicast:
		return "inet", true
	case IPv6Unicast:
		return "inet6", true
	}
	return "", false
}

// Count implements Peer.
func (o *OpenBGPD) Count(ctx context.Context, f Family) (int, error) {
	rs, err := o.Routes(ctx, f)
	return len(rs), err
}

// Routes implements Peer (FlowSpec families are always empty).
func (o *OpenBGPD) Routes(ctx context.Context, f Family) ([]Route, error) {
	af, ok := obgpFamily(f)
	if !ok {
		return nil, nil
	}
	out, err := o.Cmd(ctx, "-j", "show", "rib", af, "detail")
	if err != nil {
		return nil, err
	}
	var v struct {
		Rib []struct {
			Prefix      string   `json:"prefix"`
			ASPath      string   `json:"aspath"`
			TrueNexthop string   `json:"true_nexthop"`
			Exit        string   `json:"exit_nexthop"`
			Communities []string `json:"communities"`
			Large       []string `json:"large_communities"`
		} `json:"rib"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("openbgpd: rib: %v: %s", err, tail(out, 300))
	}
	var rs []Route
	for _, e := range v.Rib {
		p, err := netip.ParsePrefix(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("openbgpd: rib prefix %q: %v", e.Prefix, err)
		}
		r := Route{Family: f, Prefix: p}
		r.NextHop, _ = netip.ParseAddr(e.Exit)
		for _, x := range strings.Fields(e.ASPath) {
			var n uint32
			if _, err := fmt.Sscan(x, &n); err == nil {
				r.ASPath = append(r.ASPath, n)
			}
		}
		for _, c := range e.Communities {
			switch c {
			case "BLACKHOLE":
				c = "65535:666"
			case "NO_EXPORT":
				c = "65535:65281"
			case "NO_ADVERTISE":
				c = "65535:65282"
			case "NO_EXPORT_SUBCONFED":
				c = "65535:65283"
			}
			r.Communities = append(r.Communities, c)
		}
		r.LargeCommunities = e.Large
		r.Communities = sortedUnique(r.Communities)
		r.LargeCommunities = sortedUnique(r.LargeCommunities)
		rs = append(rs, r)
	}
	return rs, nil
}
