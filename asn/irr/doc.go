// Package irr reads Internet Routing Registry data: RPSL objects from files
// (an index over package rpsl's parser), and IRRd servers over the IRRd
// whois protocol (a pipelined client). Both answer the resolver's
// questions: which ASNs an AS-SET holds, and which route/route6 prefixes an
// ASN originates.
package irr
