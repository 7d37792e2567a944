package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/store"
)

// TestDaemonShowsPeerNotifications: peers that refuse asfence's OPEN with
// a NOTIFICATION (BIRD requiring a longer hold time than asfence offers,
// FRR expecting another AS) show why, not only a state going from active
// to idle: the NOTIFICATION's direction, code, subcode, text and time are
// in the API's peer list, in `asfence peers` and in the daemon's log. The
// peers' own logs say they refused for that reason.
func TestDaemonShowsPeerNotifications(t *testing.T) {
	l := newDaemonLabWith(t, "@every 1h", "", daemonLabOptions{frr: true, debug: true, peer: func(name string, c *lab.Config) {
		switch name {
		case "bird":
			c.Sessions[0].Options = "min hold time 120;" // asfence offers 90 s
		case "frr":
			c.Sessions[0].ASN = 65002 // asfence is AS65001
		}
	}})
	snap := filepath.Join(l.dir, "snapshot.json")
	s, err := asn.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	writeSnapshotFile(t, snap, s)
	start := time.Now().Add(-time.Second)
	l.start("--snapshot", snap)
	if r := l.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 }); r.Outcome != store.Applied {
		t.Fatalf("first run: %+v", r)
	}
	type refusal struct {
		code, subcode uint8
		text          string
		peerLog       string // what the peer logs when it refuses (FRR: with debug)
	}
	want := map[string]refusal{
		l.bird.Addr().String(): {2, 6, "OPEN message error: unacceptable hold time", "Error: Unacceptable hold time: 90"},
		l.frr.Addr().String(): {2, 2, "OPEN message error: bad peer as",
			"%NOTIFICATION: sent to neighbor " + l.addr.String() + " 2/2 (OPEN Message Error/Bad Peer AS)"},
	}
	ctx := context.Background()
	err = lab.Eventually(ctx, 120*time.Second, func(ctx context.Context) error {
		ps, err := l.client.Peers(ctx)
		if err != nil {
			return err
		}
		if len(ps) != len(want) {
			return fmt.Errorf("%d peers, want %d", len(ps), len(want))
		}
		for _, p := range ps {
			w, n := want[p.Address], p.LastNotification
			if n == nil {
				return fmt.Errorf("%s (%s): no notification yet (last error %q)", p.Address, p.State, p.LastError)
			}
			if p.Established || n.Direction != "received" || n.Code != w.code || n.Subcode != w.subcode || n.Text != w.text ||
				n.At.Before(start) || n.At.After(time.Now()) {
				return fmt.Errorf("%s (%s): notification %+v, want received %d/%d %q", p.Address, p.State, *n, w.code, w.subcode, w.text)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The peers refused for that reason (their own words).
	for _, p := range l.peers() {
		if w := want[p.Addr().String()]; !strings.Contains(p.Log(), w.peerLog) {
			t.Errorf("%s's log does not say %q:\n%s", p.Name(), w.peerLog, tailString(p.Log(), 2000))
		}
	}
	out, err := l.cli("peers")
	if err != nil {
		t.Fatalf("asfence peers: %v\n%s", err, out)
	}
	for addr, w := range want {
		line := ""
		for _, x := range strings.Split(out, "\n") {
			if strings.HasPrefix(x, addr+" ") {
				line = x
			}
		}
		if s := fmt.Sprintf("received %d/%d %s at ", w.code, w.subcode, w.text); !strings.Contains(line, s) {
			t.Errorf("asfence peers: no %q for %s:\n%s", s, addr, out)
		}
	}
	// The log has one line per refusal, in the operator's words.
	f, err := os.Open(filepath.Join(l.dir, "asfence.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	logged := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Msg, Peer, Notification string
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && strings.HasPrefix(e.Msg, "bgp: notification received") && want[e.Peer].text == e.Notification {
			logged[e.Peer] = true
		}
	}
	for addr, w := range want {
		if !logged[addr] {
			t.Errorf("the daemon's log has no notification %q from %s", w.text, addr)
		}
	}
}
