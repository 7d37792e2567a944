package integration

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/bgp"
	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/policy"
)

// without copies the Intent leaving out the given prefixes.
func without(in *policy.Intent, drop map[netip.Prefix]bool) *policy.Intent {
	out := *in
	out.Targets = nil
	for _, tg := range in.Targets {
		c := tg
		c.Prefixes = slices.DeleteFunc(slices.Clone(tg.Prefixes), func(p asn.Prefix) bool { return drop[p.Prefix] })
		out.Targets = append(out.Targets, c)
	}
	return &out
}

// churnSets picks two disjoint 1 % samples of the Intent's prefixes, each
// held by a single target, spread over the address space.
func churnSets(in *policy.Intent) (held, removed map[netip.Prefix]bool) {
	owners := map[netip.Prefix]int{}
	for _, tg := range in.Targets {
		for _, p := range tg.Prefixes {
			owners[p.Prefix]++
		}
	}
	var single []netip.Prefix
	for p, n := range owners {
		if n == 1 {
			single = append(single, p)
		}
	}
	slices.SortFunc(single, asn.ComparePrefix)
	k := len(owners) / 100
	held, removed = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	step := len(single) / (2 * k)
	for i := 0; i < 2*k; i++ {
		if p := single[i*step]; i%2 == 0 {
			held[p] = true
		} else {
			removed[p] = true
		}
	}
	return held, removed
}

// diffCount counts the keys only in a, and only in b.
func diffCount(a, b map[string]expectedRoute) (onlyA, onlyB int) {
	for k := range a {
		if _, ok := b[k]; !ok {
			onlyA++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			onlyB++
		}
	}
	return onlyA, onlyB
}

// TestBGPChurnIsADelta changes the Intent by removing 1 % of the prefixes
// and adding another 1 %: BIRD, FRR and ExaBGP converge to exactly the new
// set, their sessions never leave Established, and the routes announced
// and withdrawn (counted by the speaker and by BIRD) equal the change.
func TestBGPChurnIsADelta(t *testing.T) {
	lab.Short(t)
	lab.Parallel(t)
	ctx := context.Background()
	full := embeddedIntent(t)
	held, removed := churnSets(full)
	before, after := without(full, held), without(full, removed)
	if len(held) < 20 || len(removed) != len(held) {
		t.Fatalf("churn sets: %d held, %d removed", len(held), len(removed))
	}

	local := lab.Loopback(t)
	session := []lab.Session{{Addr: local, ASN: speakerASN, Passive: true, Families: lab.AllFamilies}}
	bird := lab.StartBIRD(t, lab.Config{ASN: speakerASN, Extra: lab.BIRDDiscardStatics, Sessions: session})
	frr := lab.StartFRR(t, lab.Config{ASN: speakerASN, Sessions: session})
	exa := lab.StartExaBGP(t, lab.Config{ASN: speakerASN, Sessions: session})
	peers := []lab.Peer{bird, frr, exa}
	var ns []bgp.NeighborConfig
	for _, p := range peers {
		ns = append(ns, neighborOf(p, local, speakerASN, bgp.AnnounceBlackhole, bgp.AnnounceFlowSpec))
	}
	sp := startSpeaker(t, local, before, ns...)

	rtbh0, flow0 := expectRTBH(before), expectFlowSpec(before)
	rtbh1, flow1 := expectRTBH(after), expectFlowSpec(after)
	sessions := map[string]lab.SessionInfo{}
	for _, p := range peers {
		sessions[p.Name()] = lab.WaitEstablished(t, ctx, p, local, 30*time.Second)
		for _, f := range lab.AllFamilies {
			want := rtbh0
			if !f.Unicast() {
				want = flow0
			}
			checkHolds(t, ctx, p, f, want, p.Name() != "frr" || f.Unicast())
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	stats0 := map[lab.Family]lab.ChannelStats{}
	for _, f := range lab.AllFamilies {
		st, err := bird.ChannelStats(ctx, local, f)
		if err != nil {
			t.Fatal(err)
		}
		stats0[f] = st
	}
	exaUpdates0, err := exa.Updates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	speaker0, err := sp.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The set was loaded before the neighbors: the first transfer is
	// packed. GoBGP packs unicast routes with equal attributes into one
	// UPDATE (FlowSpec rules go one per UPDATE), so far fewer UPDATEs than
	// routes; one per route would be the unpacked, after-the-fact load.
	total := len(rtbh0) + len(flow0)
	for _, p := range speaker0 {
		if p.UpdatesSent == 0 || p.UpdatesSent > uint64(len(flow0)+len(rtbh0)/10) {
			t.Errorf("speaker: initial transfer to %s took %d UPDATEs for %d RTBH routes and %d FlowSpec rules", p.Description, p.UpdatesSent, len(rtbh0), len(flow0))
		}
		t.Logf("initial transfer to %s: %d UPDATEs for %d routes", p.Description, p.UpdatesSent, total)
	}

	c, err := sp.Apply(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	flowWithdrawn, flowAdded := diffCount(flow0, flow1)
	if c.Added != len(held)+flowAdded || c.Withdrawn != len(removed)+flowWithdrawn || c.Replaced != 0 ||
		c.Unchanged != len(rtbh1)-len(held)+len(flow1)-flowAdded {
		t.Errorf("Apply counts %+v; want %d+%d added, %d+%d withdrawn, none replaced", c, len(held), flowAdded, len(removed), flowWithdrawn)
	}
	for _, p := range peers {
		for _, f := range lab.AllFamilies {
			want := rtbh1
			if !f.Unicast() {
				want = flow1
			}
			checkHolds(t, ctx, p, f, want, p.Name() != "frr" || f.Unicast())
		}
		si, err := p.Session(ctx, local)
		if err != nil {
			t.Fatal(err)
		}
		if !sessions[p.Name()].Unchanged(si) {
			t.Errorf("%s: session %+v, before the change %+v: it was reset", p.Name(), si, sessions[p.Name()])
		}
	}
	// BIRD counts every route received in an announcement or withdrawal.
	var gotAdd, gotDel int
	for _, f := range lab.AllFamilies {
		st, err := bird.ChannelStats(ctx, local, f)
		if err != nil {
			t.Fatal(err)
		}
		gotAdd += st.ImportUpdates - stats0[f].ImportUpdates
		gotDel += st.ImportWithdraws - stats0[f].ImportWithdraws
	}
	if gotAdd != len(held)+flowAdded || gotDel != len(removed)+flowWithdrawn {
		t.Errorf("BIRD received %d announced and %d withdrawn routes; the change is %d and %d", gotAdd, gotDel, len(held)+flowAdded, len(removed)+flowWithdrawn)
	}
	// ExaBGP counts UPDATE messages: at most one per changed route.
	exaUpdates1, err := exa.Updates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := exaUpdates1 - exaUpdates0; n < 1 || n > c.Added+c.Withdrawn {
		t.Errorf("ExaBGP received %d UPDATEs for %d changed routes", n, c.Added+c.Withdrawn)
	}
	speaker1, err := sp.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range speaker1 {
		if speaker1[i].State != "established" || !speaker1[i].EstablishedSince.Equal(speaker0[i].EstablishedSince) {
			t.Errorf("speaker: %s %s since %v, before %v", speaker1[i].Address, speaker1[i].State, speaker1[i].EstablishedSince, speaker0[i].EstablishedSince)
		}
	}
	t.Logf("churn: %d held back then added, %d removed; FlowSpec +%d -%d; ExaBGP UPDATEs %d", len(held), len(removed), flowAdded, flowWithdrawn, exaUpdates1-exaUpdates0)
}
