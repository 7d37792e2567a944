package sources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
)

func TestBuildIRR(t *testing.T) {
	x, err := irr.LoadFiles("../irr/testdata/ripe-nonauth-route-sample.rpsl")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := irrd.Listen("127.0.0.1:0", x, irrd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := &Config{
		IRR: &IRRConfig{Servers: []IRRServer{
			{Address: srv.Addr(), Sources: []string{"ripe-nonauth"}, Timeout: 5 * time.Second},
			{Address: "whois.example.net"},
		}, MaxDepth: 3},
		Files: []FileConfig{{Format: "rpsl", Path: "../irr/testdata/ripe-nonauth-aut-num-AS132203-AS45090.rpsl"}},
	}
	srcs, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 3 || srcs[0].Name() != "irr:"+srv.Addr() || srcs[1].Name() != "irr:whois.example.net:43" ||
		srcs[2].Name() != "file:rpsl:../irr/testdata/ripe-nonauth-aut-num-AS132203-AS45090.rpsl" {
		t.Fatalf("sources %v", srcs)
	}
	r, ok := srcs[0].(asn.Resolver)
	if !ok {
		t.Fatal("IRR source is not a Resolver")
	}
	facts, err := r.Resolve(context.Background(), &asn.Target{Name: "t"}, []uint32{2561})
	if err != nil || len(facts.Prefixes) != 16 {
		t.Errorf("resolve through the built source: %d prefixes, %v", len(facts.Prefixes), err)
	}
	if _, ok := srcs[2].(asn.Provenancer); !ok {
		t.Error("rpsl file source has no provenance")
	}

	c.IRR.Servers[1].Sources = []string{"RIPE,RADB"}
	if _, err := Build(c); err == nil || !strings.HasPrefix(err.Error(), "sources.irr.servers[1]: ") {
		t.Errorf("bad source name: %v", err)
	}
	c.IRR.Servers[1].Sources = nil
	c.Files[0].Path = "../irr/testdata/missing.rpsl"
	if _, err := Build(c); err == nil || !strings.HasPrefix(err.Error(), "sources.files[0]: file:rpsl: ") {
		t.Errorf("missing file: %v", err)
	}
}
