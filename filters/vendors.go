package filters

import (
	"fmt"
	"strings"
)

// vendor is everything asfence knows about one output format. This table
// is the only place that holds per-vendor facts; the syntax itself is in
// the vendor's templates.
type vendor struct {
	// id is the vendor ID of --vendor and outputs.vendors.
	id string
	// file is the name `generate --out DIR` and the daemon write.
	file string
	// template renders the full file (a file of the same name in
	// templates_dir replaces the embedded one).
	template string
	// incremental renders the commands that apply only a change (see
	// IncrementalCommands), "" when the vendor has none; fullReplace then
	// says why the whole file must be loaded instead.
	incremental string
	fullReplace string
	// What the file holds: route-filter prefix lists of both families, an
	// origin AS-path filter, and a data-plane filter (ACL, firewall filter
	// or set) whose entries are counted as acl says.
	prefixLists, asPath bool
	acl                 aclStyle
	// evidence: the file lists every prefix with its evidence (a data
	// document, not configuration).
	evidence bool
}

// aclStyle says whether a vendor's file has a data-plane filter and how
// its entries count against max_entries.
type aclStyle int

const (
	aclNone  aclStyle = iota
	aclLines          // one line per direction and prefix (Cisco-style ACL)
	aclSet            // one element per prefix (prefix-list / set / address-list)
)

// vendorTable lists the vendors in the order `asfence vendors` shows them.
// A function, not a variable, so there is no package-level mutable state.
func vendorTable() []vendor {
	return []vendor{
		{id: "cisco-ios", file: "asfence-cisco-ios.conf", template: "cisco-ios.tmpl",
			incremental: "cisco-ios.incremental.tmpl", prefixLists: true, asPath: true, acl: aclLines},
		{id: "cisco-iosxr", file: "asfence-cisco-iosxr.conf", template: "cisco-iosxr.tmpl",
			fullReplace: "an IOS XR prefix-set/as-path-set is always replaced as a whole: apply the full file",
			prefixLists: true, asPath: true, acl: aclLines},
		{id: "junos", file: "asfence-junos.conf", template: "junos.tmpl",
			incremental: "junos.incremental.tmpl", prefixLists: true, asPath: true, acl: aclSet},
		{id: "arista-eos", file: "asfence-arista-eos.conf", template: "arista-eos.tmpl",
			fullReplace: "EOS prefix-list entries are addressed by sequence number, which shift between files: apply the full file (it starts with \"no ip prefix-list\"), ideally in a configure session",
			prefixLists: true, asPath: true, acl: aclLines},
		{id: "nokia-sros", file: "asfence-nokia-sros.conf", template: "nokia-sros.tmpl",
			incremental: "nokia-sros.incremental.tmpl", prefixLists: true, asPath: true, acl: aclSet},
		{id: "huawei-vrp", file: "asfence-huawei-vrp.conf", template: "huawei-vrp.tmpl",
			fullReplace: "VRP ip-prefix entries are addressed by index, which shifts between files: apply the full file",
			prefixLists: true, asPath: true, acl: aclLines},
		{id: "mikrotik", file: "asfence-mikrotik.rsc", template: "mikrotik.tmpl",
			incremental: "mikrotik.incremental.tmpl", prefixLists: true, asPath: true, acl: aclSet},
		{id: "bird", file: "asfence-bird.conf", template: "bird.tmpl",
			fullReplace: "BIRD reads whole files: replace the file and run \"birdc configure\"",
			prefixLists: true, asPath: true},
		{id: "frr", file: "asfence-frr.conf", template: "frr.tmpl",
			incremental: "frr.incremental.tmpl", prefixLists: true, asPath: true},
		{id: "openbgpd", file: "asfence-openbgpd.conf", template: "openbgpd.tmpl",
			fullReplace: "OpenBGPD reads whole files: replace the file and run \"bgpctl reload\"",
			prefixLists: true, asPath: true},
		{id: "nftables", file: "asfence.nft", template: "nftables.tmpl",
			incremental: "nftables.incremental.tmpl", acl: aclSet},
		{id: "json", file: "asfence.json", template: "json.tmpl",
			fullReplace: "the JSON document is data, not configuration",
			prefixLists: true, asPath: true, acl: aclSet, evidence: true},
	}
}

// lookup returns the table entry of a vendor ID.
func lookup(id string) (vendor, error) {
	for _, v := range vendorTable() {
		if v.id == id {
			return v, nil
		}
	}
	return vendor{}, fmt.Errorf("unknown vendor %q (one of %s)", id, strings.Join(Vendors(), ", "))
}

// Vendors returns the vendor IDs.
func Vendors() []string {
	t := vendorTable()
	ids := make([]string, len(t))
	for i, v := range t {
		ids[i] = v.id
	}
	return ids
}

// KnownVendor reports whether id is a vendor ID.
func KnownVendor(id string) bool {
	_, err := lookup(id)
	return err == nil
}

// FileName is the file name `generate --out DIR` writes for a vendor.
func FileName(id string) string {
	if v, err := lookup(id); err == nil {
		return v.file
	}
	return "asfence-" + id + ".conf"
}

// lists returns the lists a vendor's file holds, with their entry counts.
func (v vendor) lists(p *Prepared, n Names) []ListCount {
	var out []ListCount
	if v.prefixLists {
		out = append(out,
			ListCount{n.PrefixV4, "ipv4 route filter", len(p.v4)},
			ListCount{n.PrefixV6, "ipv6 route filter", len(p.v6)})
	}
	if v.asPath {
		out = append(out, ListCount{n.ASPath, "origin ASNs", len(p.asns)})
	}
	per := 1
	kind := "prefixes"
	if v.acl == aclLines {
		per, kind = 2, "ACL lines (from and to each prefix)"
	}
	if v.acl != aclNone {
		out = append(out,
			ListCount{n.ACLV4, "ipv4 address " + kind, per * len(p.cov4)},
			ListCount{n.ACLV6, "ipv6 address " + kind, per * len(p.cov6)})
	}
	return out
}

// checkCapacity fails with a *CapacityError when a list is longer than max
// (0: unlimited).
func (v vendor) checkCapacity(lists []ListCount, max int) error {
	if max <= 0 {
		return nil
	}
	for _, l := range lists {
		if l.Entries > max {
			return &CapacityError{Vendor: v.id, List: l.Name, Entries: l.Entries, Max: max}
		}
	}
	return nil
}

// sizeHint estimates the size of the vendor's file, to allocate its
// buffer once.
func (v vendor) sizeHint(p *Prepared) int {
	n := 100*(len(p.v4)+len(p.v6)) + 120*(len(p.cov4)+len(p.cov6)) + 4096
	if v.evidence {
		for _, c := range p.counts {
			n += 260 * (c[0] + c[1])
		}
	}
	return n
}
