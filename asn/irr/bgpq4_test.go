package irr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
	"github.com/asfence/asfence/asn/irr"
	"github.com/asfence/asfence/asn/irr/irrd"
	"github.com/asfence/asfence/asn/rpsl"
)

// routeSampleSets builds AS-ROUTES from the origins of the real route and
// route6 samples (nested: one set per family), plus a private ASN that
// bgpq4 rejects and asfence skips.
func routeSampleSets(t *testing.T) string {
	t.Helper()
	var v4, v6 []string
	for _, f := range []string{"testdata/ripe-nonauth-route-sample.rpsl", "testdata/ripe-nonauth-route6-sample.rpsl"} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = rpsl.Parse(f, fh, func(o *rpsl.Object) error {
			origin, _ := o.Get("origin")
			if o.Class == "route" && !slices.Contains(v4, origin) {
				v4 = append(v4, origin)
			}
			if o.Class == "route6" && !slices.Contains(v6, origin) {
				v6 = append(v6, origin)
			}
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(v4) < 20 || len(v6) < 10 {
		t.Fatalf("origins: %d v4, %d v6", len(v4), len(v6))
	}
	return fmt.Sprintf("as-set: AS-ROUTES\nmembers: AS-ROUTES-V4, AS-ROUTES-V6, AS64512\nsource: TEST\n\n"+
		"as-set: AS-ROUTES-V4\nmembers: %s\nsource: TEST\n\nas-set: AS-ROUTES-V6\nmembers: %s\nsource: TEST\n",
		strings.Join(v4, ", "), strings.Join(v6, " "))
}

// bgpq4 runs the real bgpq4 against addr and returns the prefixes of its
// Cisco prefix-list output and of its JSON output (which must agree).
func bgpq4(t *testing.T, addr string, v6 bool, args ...string) []string {
	t.Helper()
	run := func(extra ...string) string {
		a := []string{"-h", addr, "-S", "RIPE-NONAUTH,TEST"}
		if v6 {
			a = append(a, "-6")
		}
		a = append(append(a, extra...), args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bgpq4", a...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("bgpq4 %s: %v\n%s", strings.Join(a, " "), err, errb.String())
		}
		return out.String()
	}
	var cisco []string
	for _, line := range strings.Split(run("-l", "x"), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[1] == "prefix-list" && f[3] == "permit" {
			cisco = append(cisco, f[4])
		}
	}
	var doc map[string][]struct {
		Prefix string `json:"prefix"`
		Exact  bool   `json:"exact"`
	}
	js := run("-j", "-l", "x")
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("bgpq4 -j output: %v\n%s", err, js)
	}
	var fromJSON []string
	for _, e := range doc["x"] {
		fromJSON = append(fromJSON, e.Prefix)
	}
	slices.Sort(cisco)
	slices.Sort(fromJSON)
	if !slices.Equal(cisco, fromJSON) {
		t.Fatalf("bgpq4 Cisco and JSON outputs differ:\n%v\n%v", cisco, fromJSON)
	}
	return cisco
}

// TestSameAsBgpq4: the client's prefix set for an AS-SET is exactly the one
// real bgpq4 gets from the same server, per family, with the server's !a
// and without it (bgpq4 then expands with !i,1 and !g/!6 per ASN).
func TestSameAsBgpq4(t *testing.T) {
	if _, err := exec.LookPath("bgpq4"); err != nil {
		t.Skip("bgpq4 not installed")
	}
	sets := routeSampleSets(t)
	for _, noA := range []bool{false, true} {
		t.Run(fmt.Sprintf("noA=%v", noA), func(t *testing.T) {
			s, err := irrd.Listen("127.0.0.1:0", loadIndex(t, sets), irrd.Options{NoA: noA})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, serverSide := range []bool{false, true} {
				c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE-NONAUTH", "TEST"}, ServerSideRecursion: serverSide})
				tg := &asn.Target{Name: "t", ASSets: []string{"AS-ROUTES"}}
				members, err := c.Discover(context.Background(), tg)
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(asnsOf(members), 64512) {
					t.Error("private AS64512 not skipped")
				}
				facts, err := c.Resolve(context.Background(), tg, asnsOf(members))
				if err != nil {
					t.Fatal(err)
				}
				for _, v6 := range []bool{false, true} {
					want := bgpq4(t, s.Addr(), v6, "AS-ROUTES")
					got := prefixesOf(facts.Prefixes, v6)
					if len(want) < 20 || !slices.Equal(got, want) {
						t.Errorf("serverSide=%v v6=%v: asfence %d prefixes, bgpq4 %d\nasfence %v\nbgpq4   %v", serverSide, v6, len(got), len(want), got, want)
					}
				}
			}
			// One origin, as bgpq4 -l x AS2561 asks it.
			c := newClient(t, irr.Config{Address: s.Addr(), Sources: []string{"RIPE-NONAUTH", "TEST"}})
			facts, err := c.Resolve(context.Background(), nil, []uint32{2561})
			if err != nil {
				t.Fatal(err)
			}
			if want, got := bgpq4(t, s.Addr(), false, "AS2561"), prefixesOf(facts.Prefixes, false); len(want) != 16 || !slices.Equal(got, want) {
				t.Errorf("AS2561: asfence %v, bgpq4 %v", got, want)
			}
		})
	}
}
