#!/bin/sh
# Reproduces the ip-location-db excerpts under asn/data/inputs/tables/ip-location-db/
# from the npm tarball of @ip-location-db/asn (see asn/data/inputs/PROVENANCE.md).
#
#   npm pack @ip-location-db/asn@2.3.2026061719
#   scripts/excerpt-ip-location-db.sh ip-location-db-asn-2.3.2026061719.tgz asn/data/inputs/tables/ip-location-db
#
# A row is kept, byte for byte and in file order, when its ASN (third field) is a
# seed or name-only ASN of a built-in target (asn/builtin.go) or an ASN another
# input source names like a target (AS139341 "WeChat/QQ CDN" in
# prefixes/as-prefix/), or when its organisation (the rest of the line) matches
# a built-in target name case-insensitively on ASCII word boundaries, as
# asn.Target.NameMatcher does.
# The CSV files have no header line.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 TARBALL OUTDIR" >&2
	exit 2
fi
tarball=$1
out=$2

want=b9425daf2f011c28f8586685d4f89166e77627e2c15fd93c6262c3e2dead6153
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	echo "$tarball: sha256 $got, want $want (@ip-location-db/asn 2.3.2026061719)" >&2
	exit 1
fi

# ByteDance seeds, ByteDance name-only, Tencent seeds, discovered by name elsewhere.
asns='396986|11983|398175|138699|137775|137718|150436|139158|138419|45090|132203|132591|133478|137876|58835|9390|139341'
names='Bytedance|TikTok|Larksuite|Lark Enterprise|BytePlus|Volcano Engine|Tencent|WeChat'
re="^[^,]*,[^,]*,($asns),|^[^,]*,[^,]*,[0-9]+,(?i).*\\b($names)\\b"

mkdir -p "$out"
for f in asn-ipv4 asn-ipv6; do
	tar -xzOf "$tarball" "package/$f.csv" | LC_ALL=C grep -aP "$re" >"$out/$f.2.3.2026061719.excerpt.csv"
done
# The licence and modification notes the package asks users to keep.
for f in DBIP-LICENSE NRO_LICENSE ROUTEVIEWS-LICENSE MODIFICATIONS; do
	tar -xzOf "$tarball" "package/$f" >"$out/$f"
done
