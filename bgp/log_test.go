package bgp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/asfence/asfence/integration/lab"
)

func TestNotificationText(t *testing.T) {
	for _, c := range []struct {
		code, sub uint8
		want      string
	}{
		{2, 6, "OPEN message error: unacceptable hold time"},
		{2, 3, "OPEN message error: bad bgp identifier"},
		{6, 1, "cease: maximum number of prefixes reached"},
		{4, 0, "hold timer expired"},
		{6, 0, "cease"},
		{6, 99, "cease: subcode 99"},
		{42, 1, "error code 42: subcode 1"},
	} {
		if got := notificationText(c.code, c.sub); got != c.want {
			t.Errorf("%d/%d: %q, want %q", c.code, c.sub, got, c.want)
		}
	}
}

// TestNotificationsShowInPeers: a NOTIFICATION the speaker sends (the
// neighbor's OPEN names another AS than configured) and one it receives
// (the neighbor expects another AS) are in Peers, with direction, code,
// subcode and text; from real GoBGP peers.
func TestNotificationsShowInPeers(t *testing.T) {
	lab.Parallel(t)
	local := lab.Loopback(t)
	// Configured as AS65002, but it is AS65001: the speaker refuses it.
	wrongAS := newReceiver(t, 65001, 65001, local)
	refused := wrongAS.neighbor(65002, local)
	refused.AllowEBGP = true
	// Expects the speaker as AS65099: it refuses the speaker.
	refuses := newReceiver(t, 65001, 65099, local)
	s := startSpeaker(t, Options{Config: Config{ASN: 65001, RouterID: local.String(),
		Neighbors: []NeighborConfig{refused, refuses.neighbor(65001, local)}}}, intent(tgt{"bytedance", 1, []string{"20.0.1.0/24"}}))
	want := map[string]Notification{
		refused.Address:       {Direction: NotificationSent, Code: bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, Subcode: bgp.BGP_ERROR_SUB_BAD_PEER_AS, Text: "OPEN message error: bad peer as"},
		refuses.addr.String(): {Direction: NotificationReceived, Code: bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, Subcode: bgp.BGP_ERROR_SUB_BAD_PEER_AS, Text: "OPEN message error: bad peer as"},
	}
	start := time.Now().Add(-time.Second)
	err := lab.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		ps, err := s.Peers(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			w := want[p.Address]
			n := p.LastNotification
			if n == nil {
				return fmt.Errorf("%s: no notification yet (%s, %s)", p.Address, p.State, p.LastError)
			}
			if p.State == "established" || n.Direction != w.Direction || n.Code != w.Code || n.Subcode != w.Subcode || n.Text != w.Text ||
				n.At.Before(start) || n.At.After(time.Now()) {
				return fmt.Errorf("%s: %s, notification %+v, want %+v", p.Address, p.State, *n, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
