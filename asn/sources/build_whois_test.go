package sources

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/field"
)

func TestValidateWhois(t *testing.T) {
	c := &Config{Whois: []WhoisConfig{
		{Registry: "apnic", Dumps: []DumpConfig{{URL: "https://ftp.apnic.net/apnic/whois/apnic.db.inetnum.gz"}, {Path: "x.gz"}}},
		{Registry: "RIPE", Dumps: []DumpConfig{{Path: "a", URL: "https://b"}, {URL: "ftp://ftp.ripe.net/x"}}},
		{Registry: "apnic", MaxAge: -time.Second, Timeout: -time.Second},
	}}
	var got []string
	for _, e := range field.Errors(Validate(c, nil)) {
		got = append(got, e.Error())
	}
	want := []string{
		`whois[1].registry: invalid registry name "RIPE" (use 1-32 of a-z, 0-9, '-', e.g. apnic)`,
		"whois[1].dumps[0]: set path or url, not both",
		`whois[1].dumps[1].url: invalid URL "ftp://ftp.ripe.net/x" (want http:// or https://)`,
		`whois[2].registry: registry "apnic" is also whois[0]: list all its dumps in one entry`,
		"whois[2].dumps: at least one dump is needed",
		"whois[2].max_age: must not be negative",
		"whois[2].timeout: must not be negative",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBuildWhois builds the whois source from a config and resolves a
// target from the real dumps through the engine.
func TestBuildWhois(t *testing.T) {
	c := &Config{Timeout: 10 * time.Second, Whois: []WhoisConfig{{Registry: "ripe", Dumps: []DumpConfig{
		{Path: "../whoisdump/testdata/ripe-nonauth.db.aut-num.gz"}, {Path: "../whoisdump/testdata/ripe-objects.rpsl"},
	}}}}
	if err := Validate(c, nil); err != nil {
		t.Fatal(err)
	}
	tg := []asn.Target{{Name: "rackspace", ASNs: []asn.SeedASN{{ASN: 33070}}}, {Name: "likhner", ASNs: []asn.SeedASN{{ASN: 215778}}}}
	snap, names, err := Resolve(context.Background(), c, tg, asn.Engine{})
	if err != nil || len(snap.Incomplete) != 0 {
		t.Fatalf("%v %+v", err, snap.Incomplete)
	}
	if !slices.Equal(names, []string{"whois:ripe"}) {
		t.Errorf("sources %v", names)
	}
	if n := len(snap.Target("rackspace").ASNs); n != 3 {
		t.Errorf("rackspace: %d ASNs", n)
	}
	if ps := snap.Target("likhner").Prefixes; len(ps) != 1 || ps[0].Prefix.String() != "2a11:f2c0:ffcb::/48" || ps[0].Evidence[0].Source != "whois:ripe" {
		t.Errorf("likhner prefixes %+v", ps)
	}
	if len(snap.Provenance) != 2 || snap.Provenance[0].Source != "whois:ripe" {
		t.Errorf("provenance %+v", snap.Provenance)
	}

	c.Whois[0].Dumps[1].Path = "../whoisdump/testdata/missing.gz"
	if _, err := Build(c); err == nil || !strings.HasPrefix(err.Error(), "sources.whois[0]: whois:ripe: stat ../whoisdump/testdata/missing.gz") {
		t.Errorf("missing dump: %v", err)
	}
}
