package sources

import "time"

// Default is used when the config has no sources: block and asfence runs
// online: every public source that needs no account (docs/sources.md lists
// them with sizes, update frequencies and terms). (Offline, the embedded
// snapshot is used.)
//
//   - IRR route objects (RADB's mirror of the major IRRs);
//   - the five RIRs' delegated-extended statistics (holders' opaque ids);
//   - RDAP, RIPEstat (announced prefixes per ASN), PeeringDB;
//   - RPKI ROAs (rpki-client's public console);
//   - APNIC's, RIPE NCC's and AFRINIC's whois dumps: space registered to a
//     target, including what an upstream announces for it;
//   - routing tables: RIPE RIS rrc00's latest RIB dump (what is announced,
//     by which origin, seen by how many peers) and iptoasn's hourly
//     range table.
//
// The first run downloads hundreds of MB per big file (the RIB dump and
// the whois dumps); later runs fetch a file again only when it changed
// (tables) or is older than max_age (whois dumps, 12h).
func Default() *Config {
	return &Config{
		Timeout: 60 * time.Second,
		IRR: &IRRConfig{Servers: []IRRServer{{
			Address: "whois.radb.net:43",
			Sources: []string{"RADB", "RIPE", "APNIC", "ARIN", "AFRINIC", "LACNIC", "NTTCOM", "LEVEL3"},
		}}},
		RIR: []RIRConfig{
			{URL: "https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest"},
			{URL: "https://ftp.ripe.net/pub/stats/ripencc/delegated-ripencc-extended-latest"},
			{URL: "https://ftp.arin.net/pub/stats/arin/delegated-arin-extended-latest"},
			{URL: "https://ftp.afrinic.net/pub/stats/afrinic/delegated-afrinic-extended-latest"},
			{URL: "https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest"},
		},
		RDAP:      &RDAPConfig{BaseURL: "https://rdap.org/"},
		RIPEstat:  &RIPEstatConfig{BaseURL: "https://stat.ripe.net", SourceApp: "asfence"},
		PeeringDB: &PeeringDBConfig{BaseURL: "https://www.peeringdb.com"},
		RPKI:      []RPKIConfig{{URL: "https://console.rpki-client.org/vrps.json"}},
		Whois: []WhoisConfig{
			{Registry: "apnic", Dumps: splitDumps("https://ftp.apnic.net/apnic/whois/apnic.db.")},
			{Registry: "ripe", Dumps: splitDumps("https://ftp.ripe.net/ripe/dbase/split/ripe.db.")},
			{Registry: "afrinic", Dumps: []DumpConfig{{URL: "https://ftp.afrinic.net/pub/dbase/afrinic.db.gz"}}},
		},
		Tables: []TableConfig{
			{Format: "mrt", URL: "https://data.ris.ripe.net/rrc00/latest-bview.gz", Source: "ris-rrc00"},
			{Format: "ip2asn", URL: "https://iptoasn.com/data/ip2asn-combined.tsv.gz", Source: "iptoasn"},
		},
	}
}

// splitDumps lists the split whois files a registration lookup reads,
// prefix being the URL up to the class name.
func splitDumps(prefix string) []DumpConfig {
	var out []DumpConfig
	for _, class := range []string{"aut-num", "organisation", "mntner", "inetnum", "inet6num"} {
		out = append(out, DumpConfig{URL: prefix + class + ".gz"})
	}
	return out
}
