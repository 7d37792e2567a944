package explain_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/sources"
)

var update = flag.Bool("update", false, "rewrite testdata/registered-2002.json from the real data")

// RegisteredFixture is testdata/registered-2002.json: two targets resolved
// from real data by the real sources: the first 3,156 inetnum objects of
// APNIC's whois dump (registrations) and the RIPE RIS rrc00 RIB of
// 2002-07-22 (routes). "hkcable" is HK Cable TV (AS9908, and the name
// "HK Cable"): its space is announced by AS9908 and registered to it.
// "csiro" is CSIRO by name only (a documentation ASN as its seed): its
// registered space is announced by other ASes (upstreams) or not at all.
const RegisteredFixture = "testdata/registered-2002.json"

func fixtureConfig() (*sources.Config, []asn.Target) {
	c := &sources.Config{
		Whois:  []sources.WhoisConfig{{Registry: "apnic", Dumps: []sources.DumpConfig{{Path: "../asn/whoisdump/testdata/apnic.db.inetnum.head.gz"}}}},
		Tables: []sources.TableConfig{{Format: "mrt", Path: "../asn/tables/testdata/mrt/bview.20020722.2337.gz", Source: "rrc00"}},
	}
	targets := []asn.Target{
		{Name: "hkcable", ID: 1, ASNs: []asn.SeedASN{{ASN: 9908, Why: "HK Cable TV (AS9908)"}}, Names: []string{"HK Cable"}},
		{Name: "csiro", ID: 2, ASNs: []asn.SeedASN{{ASN: 64502, Why: "a documentation ASN: CSIRO is found by name"}}, Names: []string{"CSIRO"}},
	}
	return c, targets
}

func resolveFixture(t *testing.T) []byte {
	t.Helper()
	c, targets := fixtureConfig()
	// A local dump is dated by its modification time, which a checkout
	// sets: give it the fixture's date.
	dated := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, w := range c.Whois {
		for _, d := range w.Dumps {
			if err := os.Chtimes(d.Path, dated, dated); err != nil {
				t.Fatal(err)
			}
		}
	}
	eng := asn.Engine{Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }, Generator: "asfence test"}
	s, _, err := sources.Resolve(context.Background(), c, targets, eng)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Incomplete) > 0 {
		t.Fatalf("incomplete: %+v", s.Incomplete)
	}
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRegisteredFixtureIsReproducible: the fixture is what the real sources
// make of the real data today.
func TestRegisteredFixtureIsReproducible(t *testing.T) {
	got := resolveFixture(t)
	if *update {
		if err := os.WriteFile(RegisteredFixture, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(RegisteredFixture)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the sources resolve now (go test ./explain -run Fixture -update rewrites it)", filepath.Base(RegisteredFixture))
	}
}

func loadFixture(t *testing.T) *asn.Snapshot {
	t.Helper()
	s, err := asn.ReadSnapshotFile(RegisteredFixture)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
