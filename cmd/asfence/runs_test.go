package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/internal/store"
)

// TestShowBGPCounts: `show` prints what the speaker changed as before (one
// line per kind: added and withdrawn always, refused and replaced when
// not zero) and then each family that changed.
func TestShowBGPCounts(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := &store.Run{ID: 3, Trigger: "schedule", Start: at, End: at.Add(time.Second), Outcome: store.Applied,
		BGP: &bgp.Counts{Added: 3, Withdrawn: 1, Replaced: 2, Unchanged: 9, ByFamily: map[string]bgp.FamilyCounts{
			"ipv4-unicast": {Added: 3, Withdrawn: 1, Unchanged: 5}, "ipv6-unicast": {Replaced: 2, Unchanged: 4}, "ipv4-flowspec": {}}}}
	var b strings.Builder
	if err := writeRun(context.Background(), &b, nil, r, nil, 0); err != nil {
		t.Fatal(err)
	}
	want := "  bgp       added 3\n  bgp       replaced 2\n  bgp       withdrawn 1\n" +
		"  bgp       ipv4-unicast: added 3, withdrawn 1, replaced 0\n  bgp       ipv6-unicast: added 0, withdrawn 0, replaced 2\n\n"
	if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "flowspec") {
		t.Errorf("show:\n%s\nwant the lines\n%s", b.String(), want)
	}
	// A run without a speaker prints no bgp line.
	b.Reset()
	r.BGP = nil
	if err := writeRun(context.Background(), &b, nil, r, nil, 0); err != nil || strings.Contains(b.String(), "bgp") {
		t.Errorf("show without a speaker:\n%s (%v)", b.String(), err)
	}
}
