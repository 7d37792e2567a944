package bgp

import (
	"encoding/json"
	"testing"
	"time"
)

// TestCountsJSON: Counts written as JSON keep the layout run records had
// when they kept the counts as a map ({"added":N,"withdrawn":N} plus
// "replaced" and "refused" when not zero, keys in order), so that records
// written before read back unchanged; the per-family counts ride along.
func TestCountsJSON(t *testing.T) {
	for _, tc := range []struct {
		c    Counts
		want string
	}{
		{Counts{Added: 3}, `{"added":3,"withdrawn":0}`},
		{Counts{Added: 1, Withdrawn: 2, Replaced: 4, Refused: 5}, `{"added":1,"refused":5,"replaced":4,"withdrawn":2}`},
		{Counts{Added: 1, Unchanged: 7, ByFamily: map[string]FamilyCounts{"ipv4-unicast": {Added: 1, Unchanged: 7}}},
			`{"added":1,"by_family":{"ipv4-unicast":{"added":1,"withdrawn":0,"unchanged":7}},"unchanged":7,"withdrawn":0}`},
	} {
		b, err := json.Marshal(tc.c)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v: %s (%v), want %s", tc.c, b, err, tc.want)
		}
		var back Counts
		if err := json.Unmarshal(b, &back); err != nil || back.Added != tc.c.Added || back.Withdrawn != tc.c.Withdrawn ||
			back.Replaced != tc.c.Replaced || back.Refused != tc.c.Refused || len(back.ByFamily) != len(tc.c.ByFamily) {
			t.Errorf("%s read back as %+v (%v)", b, back, err)
		}
	}
	// A record from before: a map with only "added".
	var old Counts
	if err := json.Unmarshal([]byte(`{"added":12}`), &old); err != nil || old.Added != 12 || old.Withdrawn != 0 {
		t.Errorf("old record: %+v (%v)", old, err)
	}
}

// TestPeerStatusJSON: the JSON form the API serves, and read back as the
// client reads it.
func TestPeerStatusJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := PeerStatus{Address: "192.0.2.1", ASN: 64512, State: "established", Established: true, EstablishedSince: at,
		Uptime: Uptime(90 * time.Minute), Families: []string{"ipv4-unicast"}, Sent: map[string]int{"ipv4-unicast": 3},
		Received: map[string]int{}, UpdatesSent: 7,
		LastNotification: &Notification{Direction: NotificationReceived, Code: 6, Subcode: 2, Text: "cease", At: at}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"address":"192.0.2.1","asn":64512,"state":"established","established":true,"established_since":"2026-01-02T03:04:05Z",` +
		`"uptime":"1h30m0s","families":["ipv4-unicast"],"sent":{"ipv4-unicast":3},` +
		`"last_notification":{"direction":"received","code":6,"subcode":2,"text":"cease","at":"2026-01-02T03:04:05Z"},"updates_sent":7}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	var back PeerStatus
	if err := json.Unmarshal(b, &back); err != nil || back.Uptime != p.Uptime || back.UpdatesSent != 7 || back.LastNotification == nil || !back.Established {
		t.Errorf("read back: %+v (%v)", back, err)
	}
	// Not established: no uptime, an empty sent map.
	b, err = json.Marshal(PeerStatus{Address: "192.0.2.2", State: "active", Sent: map[string]int{}})
	if want := `{"address":"192.0.2.2","asn":0,"state":"active","established":false,"sent":{},"updates_sent":0}`; err != nil || string(b) != want {
		t.Errorf("JSON %s (%v), want %s", b, err, want)
	}
	if err := json.Unmarshal([]byte(`{"uptime":"soon"}`), &back); err == nil {
		t.Error("a bad uptime was read")
	}
	if s := Uptime(0).String(); s != "" {
		t.Errorf("zero uptime prints %q", s)
	}
}
