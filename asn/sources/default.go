package sources

import "time"

// Default is used when the config has no sources: block and asfence runs
// online: the public registries. (Offline, the embedded snapshot is used.)
func Default() *Config {
	return &Config{
		Timeout: 60 * time.Second,
		IRR: &IRRConfig{Servers: []IRRServer{{
			Address: "whois.radb.net:43",
			Sources: []string{"RADB", "RIPE", "APNIC", "ARIN", "AFRINIC", "LACNIC", "NTTCOM", "LEVEL3"},
		}}},
		RIR:       []RIRConfig{{URL: "https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest"}},
		RDAP:      &RDAPConfig{BaseURL: "https://rdap.org/"},
		RIPEstat:  &RIPEstatConfig{BaseURL: "https://stat.ripe.net", SourceApp: "asfence"},
		PeeringDB: &PeeringDBConfig{BaseURL: "https://www.peeringdb.com"},
	}
}
