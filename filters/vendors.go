package filters

import "slices"

// Vendors are the output formats, in the order `asfence vendors` lists them.
var vendorIDs = []string{
	"cisco-ios", "cisco-iosxr", "junos", "arista-eos", "nokia-sros", "huawei-vrp",
	"mikrotik", "bird", "frr", "openbgpd", "nftables", "json",
}

// Vendors returns the vendor IDs.
func Vendors() []string { return slices.Clone(vendorIDs) }

// KnownVendor reports whether id is a vendor ID.
func KnownVendor(id string) bool { return slices.Contains(vendorIDs, id) }
