package prefixset

import (
	"fmt"
	"net/netip"
)

// Family selects IPv4 or IPv6.
type Family int

// Families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string { return fmt.Sprintf("ipv%d", int(f)) }

// Of returns the family of a prefix.
func Of(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return IPv4
	}
	return IPv6
}
