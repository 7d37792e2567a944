package lab

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// GracefulRestart is the graceful-restart capability (RFC 4724) of a
// neighbor's last OPEN, as the daemon decoded it.
type GracefulRestart struct {
	// Advertised: the OPEN carried the capability.
	Advertised bool
	// Restarting is the Restart State (R) bit: the neighbor says it
	// restarted.
	Restarting bool
	// Preserved are the families with the Forwarding State (F) bit: the
	// neighbor says it kept them, so its stale routes stay until its
	// End-of-RIB. Sorted.
	Preserved []Family
}

// RouteEvent is one route a daemon logged receiving, replacing or
// removing from a neighbor (Config.Debug).
type RouteEvent struct {
	Family Family
	Prefix netip.Prefix
	// Action in the daemon's words. BIRD: "added", "updated", "removed",
	// "ignored" (the same route again). FRR: "received" (new or changed),
	// "duplicate" (the same route again), "flapped" (received again
	// before FRR had processed its removal), "withdrawn".
	Action string
	// Line is the log line.
	Line string
}

var birdFamilies = map[string]Family{"ipv4": IPv4Unicast, "ipv6": IPv6Unicast, "flow4": IPv4FlowSpec, "flow6": IPv6FlowSpec}

// NeighborGR reads the graceful-restart capability BIRD received from
// neighbor ("show protocols all": Neighbor capabilities, Graceful restart).
func (b *BIRD) NeighborGR(ctx context.Context, neighbor netip.Addr) (GracefulRestart, error) {
	name, err := b.sessionName(neighbor)
	if err != nil {
		return GracefulRestart{}, err
	}
	out, err := b.Cmd(ctx, "show", "protocols", "all", name)
	if err != nil {
		return GracefulRestart{}, err
	}
	return parseBIRDNeighborGR(out)
}

// parseBIRDNeighborGR reads the "Graceful restart" block under "Neighbor
// capabilities":
//
//	Neighbor capabilities
//	  Graceful restart
//	    Restart time: 120
//	    Restart recovery
//	    AF supported: ipv4 ipv6
//	    AF preserved: ipv4 ipv6
func parseBIRDNeighborGR(out string) (GracefulRestart, error) {
	var gr GracefulRestart
	inCaps, inGR, found := false, false, false
	capsIndent := 0
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		switch {
		case trimmed == "Neighbor capabilities":
			inCaps, found, capsIndent = true, true, indent
			continue
		case !inCaps:
			continue
		case trimmed == "" || indent <= capsIndent:
			inCaps, inGR = false, false
			continue
		case trimmed == "Graceful restart":
			gr.Advertised, inGR = true, true
			continue
		case indent <= capsIndent+2:
			inGR = false // the next capability
			continue
		case !inGR:
			continue
		}
		switch {
		case trimmed == "Restart recovery":
			gr.Restarting = true
		case strings.HasPrefix(trimmed, "AF preserved:"):
			for _, af := range strings.Fields(strings.TrimPrefix(trimmed, "AF preserved:")) {
				f, ok := birdFamilies[af]
				if !ok {
					return gr, fmt.Errorf("bird: unknown address family %q in %q", af, trimmed)
				}
				gr.Preserved = append(gr.Preserved, f)
			}
		}
	}
	if !found {
		return gr, fmt.Errorf("bird: no neighbor capabilities (session not up?): %s", tail(out, 300))
	}
	slices.Sort(gr.Preserved)
	return gr, nil
}

// birdRouteRE matches BIRD's route trace of one import ("debug { routes }"):
// "2026-12-02 07:44:35.034 <TRACE> peer0.ipv4 > removed [sole] 139.199.10.0/23 0L 4G blackhole".
var birdRouteRE = regexp.MustCompile(`<TRACE> (\S+)\.(ipv4|ipv6) > (added|updated|removed|ignored)(?: \[[^\]]*\])? (\S+)`)

// RouteEvents lists the unicast routes BIRD logged importing from
// neighbor in log (Log(), or the part of it after some point).
func (b *BIRD) RouteEvents(log string, neighbor netip.Addr) ([]RouteEvent, error) {
	name, err := b.sessionName(neighbor)
	if err != nil {
		return nil, err
	}
	var evs []RouteEvent
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		m := birdRouteRE.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != name {
			continue
		}
		p, err := netip.ParsePrefix(m[4])
		if err != nil {
			return nil, fmt.Errorf("bird: route event %q: %v", sc.Text(), err)
		}
		evs = append(evs, RouteEvent{Family: birdFamilies[m[2]], Prefix: p, Action: m[3], Line: sc.Text()})
	}
	return evs, sc.Err()
}

// NeighborGR reads the graceful-restart flags FRR received from neighbor
// ("show bgp neighbors X json": gracefulRestartInfo).
func (f *FRR) NeighborGR(ctx context.Context, neighbor netip.Addr) (GracefulRestart, error) {
	var m map[string]struct {
		Capabilities struct {
			GracefulRestart string `json:"gracefulRestart"`
		} `json:"neighborCapabilities"`
		Info map[string]any `json:"gracefulRestartInfo"`
	}
	if err := f.JSON(ctx, "show bgp neighbors "+neighbor.String()+" json", &m); err != nil {
		return GracefulRestart{}, err
	}
	n, ok := m[neighbor.String()]
	if !ok {
		return GracefulRestart{}, fmt.Errorf("frr: %w %s", errNoSession, neighbor)
	}
	return parseFRRGR(n.Capabilities.GracefulRestart, n.Info), nil
}

var frrAFKeys = map[string]Family{"ipv4Unicast": IPv4Unicast, "ipv6Unicast": IPv6Unicast, "ipv4Flowspec": IPv4FlowSpec, "ipv6Flowspec": IPv6FlowSpec}

// parseFRRGR reads FRR's gracefulRestartInfo: "rBit", and per family
// ("ipv4Unicast", ...) "fBit".
func parseFRRGR(capability string, info map[string]any) GracefulRestart {
	gr := GracefulRestart{Advertised: capability == "advertisedAndReceived" || capability == "received"}
	gr.Restarting, _ = info["rBit"].(bool)
	for key, f := range frrAFKeys {
		af, ok := info[key].(map[string]any)
		if !ok {
			continue
		}
		if fbit, _ := af["fBit"].(bool); fbit {
			gr.Preserved = append(gr.Preserved, f)
		}
	}
	slices.Sort(gr.Preserved)
	return gr
}

// frrRouteRE matches FRR's "debug bgp updates in" line about one prefix:
// "127.1.2.3(host) rcvd 1.2.0.0/16 IPv4 unicast...duplicate ignored",
// "... rcvd 1.2.0.0/16 IPv4 unicast, flapped quicker than processing",
// "... rcvd UPDATE about 1.2.0.0/16 IPv4 unicast -- withdrawn".
var frrRouteRE = regexp.MustCompile(`\] (\S+?)(?:\([^)]*\))? rcvd (?:UPDATE about )?(\S+/\d+) (IPv4|IPv6) unicast(.*)$`)

// RouteEvents lists the unicast routes FRR logged receiving from neighbor
// in log (Log(), or the part of it after some point).
func (f *FRR) RouteEvents(log string, neighbor netip.Addr) ([]RouteEvent, error) {
	var evs []RouteEvent
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		m := frrRouteRE.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != neighbor.String() {
			continue
		}
		p, err := netip.ParsePrefix(m[2])
		if err != nil {
			return nil, fmt.Errorf("frr: route event %q: %v", sc.Text(), err)
		}
		ev := RouteEvent{Family: IPv4Unicast, Prefix: p, Action: "received", Line: sc.Text()}
		if m[3] == "IPv6" {
			ev.Family = IPv6Unicast
		}
		switch rest := m[4]; {
		case strings.Contains(rest, "duplicate ignored"):
			ev.Action = "duplicate"
		case strings.Contains(rest, "flapped"):
			ev.Action = "flapped"
		case strings.Contains(rest, "withdrawn"):
			ev.Action = "withdrawn"
		case strings.TrimSpace(rest) != "":
			ev.Action = strings.TrimSpace(strings.Trim(rest, ".,"))
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}
