package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asfence/asfence/asn"
)

// registryServers starts local servers speaking the registries' real
// formats, serving the clients' test data: an RIR statistics mirror, an RDAP
// bootstrap redirector in front of an RIR RDAP server, RIPEstat and
// PeeringDB.
type registryServers struct {
	rir, rdapBoot, ripestat, peeringdb *httptest.Server
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func file(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startRegistries(t *testing.T) *registryServers {
	t.Helper()
	var r registryServers
	stats := file(t, "../rir/testdata/delegated-apnic-extended.constructed.txt")
	r.rir = serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/stats/apnic/delegated-apnic-extended-latest" {
			http.NotFound(w, req)
			return
		}
		w.Write(stats)
	}))

	rdapRIR := serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := strings.TrimPrefix(req.URL.Path, "/autnum/")
		b, err := os.ReadFile(filepath.Join("../rdap/testdata/constructed", "autnum-"+n+".json"))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			w.Write(file(t, "../rdap/testdata/error-404.json"))
			return
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write(b)
	}))
	r.rdapBoot = serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, rdapRIR.URL+req.URL.Path, http.StatusFound)
	}))

	empty := string(file(t, "../ripestat/testdata/constructed/announced-prefixes-AS398175.json"))
	r.ripestat = serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		res := req.URL.Query().Get("resource")
		if req.URL.Path != "/data/announced-prefixes/data.json" || req.URL.Query().Get("sourceapp") == "" {
			http.NotFound(w, req)
			return
		}
		if b, err := os.ReadFile("../ripestat/testdata/constructed/announced-prefixes-" + res + ".json"); err == nil {
			w.Write(b)
			return
		}
		fmt.Fprint(w, strings.Replace(empty, `"resource":"398175"`, fmt.Sprintf(`"resource":%q`, strings.TrimPrefix(res, "AS")), 1))
	}))

	load := func(name string) []map[string]any {
		var doc struct{ Data []map[string]any }
		if err := json.Unmarshal(file(t, "../peeringdb/testdata/constructed/"+name), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Data
	}
	orgs, nets := load("org.json"), load("net.json")
	r.peeringdb = serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Api-Key test-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		out := []map[string]any{}
		switch req.URL.Path {
		case "/api/org":
			q := strings.ToLower(req.URL.Query().Get("name__contains"))
			for _, o := range orgs {
				if strings.Contains(strings.ToLower(o["name"].(string)), q) {
					out = append(out, o)
				}
			}
		case "/api/net":
			var ids []float64
			for _, s := range strings.Split(req.URL.Query().Get("org_id__in"), ",") {
				id, _ := strconv.Atoi(s)
				ids = append(ids, float64(id))
			}
			for _, n := range nets {
				if slices.Contains(ids, n["org_id"].(float64)) {
					out = append(out, n)
				}
			}
		default:
			http.NotFound(w, req)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out, "meta": map[string]any{}})
	}))
	return &r
}

func (r *registryServers) config(t *testing.T) *Config {
	key := filepath.Join(t.TempDir(), "peeringdb.key")
	if err := os.WriteFile(key, []byte("test-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Config{
		Timeout:   10 * time.Second,
		RIR:       []RIRConfig{{URL: r.rir.URL + "/stats/apnic/delegated-apnic-extended-latest"}},
		RDAP:      &RDAPConfig{BaseURL: r.rdapBoot.URL + "/"},
		RIPEstat:  &RIPEstatConfig{BaseURL: r.ripestat.URL, SourceApp: "asfence-test"},
		PeeringDB: &PeeringDBConfig{BaseURL: r.peeringdb.URL, APIKeyFile: key},
		RPKI:      []RPKIConfig{{Path: "../rpki/testdata/constructed/rpki-client.json"}},
	}
}

func evidenceSources(ev []asn.Evidence) []string {
	var out []string
	for _, e := range ev {
		out = append(out, e.Source)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestBuildRegistriesResolvesBuiltinTargets builds every registry client
// from a config and resolves the built-in targets against the local
// servers, through the real engine.
func TestBuildRegistriesResolvesBuiltinTargets(t *testing.T) {
	r := startRegistries(t)
	c := r.config(t)
	if err := Validate(c, []string{"bytedance", "tencent"}); err != nil {
		t.Fatalf("config does not validate: %v", err)
	}
	srcs, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, strings.SplitN(s.Name(), ":", 2)[0])
	}
	if !slices.Equal(names, []string{"rir", "rdap", "ripestat", "peeringdb", "rpki"}) {
		t.Fatalf("sources %v", names)
	}
	eng := &asn.Engine{Sources: srcs, Timeout: c.Timeout, Now: func() time.Time { return time.Date(2026, 6, 11, 0, 0, 0, 0, time.UTC) }}
	snap, err := eng.Run(context.Background(), asn.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Incomplete) != 0 {
		t.Fatalf("incomplete: %+v", snap.Incomplete)
	}

	asnEvidence := func(target string, a uint32) []string {
		tr := snap.Target(target)
		for _, x := range tr.ASNs {
			if x.ASN == a {
				return evidenceSources(x.Evidence)
			}
		}
		return nil
	}
	prefixEvidence := func(target, p string) []string {
		tr := snap.Target(target)
		for _, x := range tr.Prefixes {
			if x.Prefix == netip.MustParsePrefix(p) {
				return evidenceSources(x.Evidence)
			}
		}
		return nil
	}
	for _, c := range []struct {
		target string
		asn    uint32
		want   []string
	}{
		{"tencent", 45090, []string{"builtin", "peeringdb", "rdap", "rir:apnic"}},
		{"tencent", 132203, []string{"builtin", "peeringdb", "rdap", "rir:apnic"}},
		{"tencent", 9390, []string{"builtin", "rir:apnic"}}, // no RDAP object: an empty answer
		{"bytedance", 396986, []string{"builtin", "peeringdb", "rdap"}},
		{"bytedance", 138699, []string{"builtin", "peeringdb", "rdap", "rir:apnic"}},
	} {
		if got := asnEvidence(c.target, c.asn); !slices.Equal(got, c.want) {
			t.Errorf("%s AS%d evidence %v, want %v", c.target, c.asn, got, c.want)
		}
	}
	for _, c := range []struct {
		target, prefix string
		want           []string
	}{
		{"tencent", "1.12.0.0/14", []string{"ripestat", "rpki"}},
		{"tencent", "103.7.28.0/22", []string{"ripestat", "rir:apnic"}},
		{"tencent", "103.95.224.0/22", []string{"ripestat", "rpki"}},
		{"tencent", "62.234.0.0/16", []string{"ripestat"}},
		{"bytedance", "103.136.220.0/22", []string{"ripestat", "rir:apnic"}},
		{"bytedance", "2404:9dc0::/32", []string{"rir:apnic"}},
		{"bytedance", "71.18.0.0/21", []string{"ripestat", "rpki"}},
	} {
		if got := prefixEvidence(c.target, c.prefix); !slices.Equal(got, c.want) {
			t.Errorf("%s %s evidence %v, want %v", c.target, c.prefix, got, c.want)
		}
	}
	// PeeringDB decoys ("Tencentric", "Tiktokers") must not be attributed.
	for _, tr := range snap.Targets {
		for _, a := range tr.ASNs {
			if a.ASN >= 64496 && a.ASN <= 64511 {
				t.Errorf("%s: decoy AS%d attributed", tr.Name, a.ASN)
			}
		}
	}
	// The VRP file was read at build time: its checksum is in the
	// provenance.
	var rpkiProv bool
	for _, in := range snap.Provenance {
		rpkiProv = rpkiProv || in.Source == "rpki" && len(in.SHA256) == 64
	}
	if !rpkiProv {
		t.Errorf("provenance %+v", snap.Provenance)
	}
}

// TestBuildRegistriesOneDown: with every registry configured and one of
// them dead, that one is incomplete and the others' facts are returned.
func TestBuildRegistriesOneDown(t *testing.T) {
	r := startRegistries(t)
	c := r.config(t)
	dead := serve(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	c.RIPEstat.BaseURL = dead.URL
	srcs, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	tencent, _ := asn.BuiltinTarget("tencent")
	snap, err := (&asn.Engine{Sources: srcs, Timeout: c.Timeout}).Run(context.Background(), []asn.Target{tencent})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Incomplete) != 1 || snap.Incomplete[0].Source != "ripestat:"+dead.URL || !strings.Contains(snap.Incomplete[0].Error, "HTTP 500") {
		t.Fatalf("incomplete %+v", snap.Incomplete)
	}
	tr := snap.Target("tencent")
	var rpkiFacts, ripestatFacts int
	for _, p := range tr.Prefixes {
		for _, ev := range p.Evidence {
			switch ev.Source {
			case "rpki":
				rpkiFacts++
			case "ripestat":
				ripestatFacts++
			}
		}
	}
	if rpkiFacts == 0 || ripestatFacts != 0 {
		t.Fatalf("rpki facts %d (want some), ripestat facts %d (want none)", rpkiFacts, ripestatFacts)
	}
}

func TestBuildRegistriesErrors(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"rir-file":    {Config{RIR: []RIRConfig{{Path: "../rir/testdata/PROVENANCE.md"}}}, "sources.rir[0]: rir ../rir/testdata/PROVENANCE.md: line 3: "},
		"rir-both":    {Config{RIR: []RIRConfig{{Path: "a", URL: "http://b"}}}, "sources.rir[0]: rir: set either a path or a URL"},
		"rpki-file":   {Config{RPKI: []RPKIConfig{{Path: "../rpki/testdata/missing.json"}}}, "sources.rpki[0]: rpki ../rpki/testdata/missing.json: open "},
		"rdap-url":    {Config{RDAP: &RDAPConfig{BaseURL: "rdap.org"}}, "sources.rdap: rdap: base URL"},
		"peeringdb":   {Config{PeeringDB: &PeeringDBConfig{APIKeyFile: "/nonexistent/key"}}, "sources.peeringdb: peeringdb: api key: "},
		"ripestat-ok": {Config{RIPEstat: &RIPEstatConfig{}}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			srcs, err := Build(&c.cfg)
			if c.want == "" {
				if err != nil || len(srcs) != 1 || srcs[0].Name() != "ripestat:https://stat.ripe.net" {
					t.Fatalf("%v %v", srcs, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want prefix %q", err, c.want)
			}
		})
	}
}

// TestBuildDefault: the public defaults build without touching the network
// (URLs are fetched on first use).
func TestBuildDefault(t *testing.T) {
	srcs, err := Build(Default())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name())
	}
	for _, want := range []string{
		"rir:https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest",
		"rir:https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest",
		"rdap:https://rdap.org/", "ripestat:https://stat.ripe.net", "peeringdb:https://www.peeringdb.com",
		"rpki:https://console.rpki-client.org/vrps.json", "whois:apnic", "whois:ripe", "whois:afrinic",
		"table:ris-rrc00", "table:iptoasn",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing from %v", want, names)
		}
	}
}
