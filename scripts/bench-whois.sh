#!/usr/bin/env bash
# Registration benchmark: `asfence resolve` scanning a large RIR whois dump
# (sources.whois) for the inetnum objects named after a target, next to
# `zcat | awk` selecting the same objects and `zcat | grep -c` counting them
# all, in the same run; wall time and peak RSS (GNU time) of each.
#
# Dataset: built at run time from the real APNIC dump excerpt
# (asn/whoisdump/testdata/apnic.db.inetnum.head.gz, 3,156 inetnum objects):
# the objects repeated COPIES times, each copy's netnames suffixed with the
# copy number and its ranges moved to another first octet (a range spanning
# two first octets keeps its own), gzip-compressed as the RIRs publish them.
# The target is named CSIRO: both tools select the objects whose netname or
# descr contains the word CSIRO (case-insensitive, on word boundaries) and
# the sets of (inetnum, netname) must be identical.
#
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-3}
COPIES=${COPIES:-317}
SRC=asn/whoisdump/testdata/apnic.db.inetnum.head.gz
for t in jq gzip /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench-whois: $t missing" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

zcat "$SRC" | awk -v copies="$COPIES" '
  BEGIN { RS = ""; ORS = "\n\n" }
  /^#/ { next }
  { obj[++n] = $0 }
  END {
    for (c = 0; c < copies; c++)
      for (i = 1; i <= n; i++) {
        o = obj[i]
        if (match(o, /^inetnum: +[0-9]+\.[0-9.]+ - [0-9]+\./)) {
          head = substr(o, 1, RLENGTH); rest = substr(o, RLENGTH + 1)
          split(head, h, /[ .]+/)   # inetnum: A b c d - E
          a = h[2] + 0; e = h[7] + 0
          if (a == e) {
            v = (a + c) % 223 + 1
            sub(/inetnum: +[0-9]+\./, "inetnum:        " v ".", head)
            sub(/- [0-9]+\.$/, "- " v ".", head)
          }
          o = head rest
        }
        sub(/\nnetname: +[^\n]*/, "&-" c, o)
        print o
      }
  }' | gzip -1 >"$tmp/bench.db.inetnum.gz"

objects=$(zcat "$tmp/bench.db.inetnum.gz" | grep -c '^inetnum:')
mb=$(( $(zcat "$tmp/bench.db.inetnum.gz" | wc -c) >> 20 ))
cat >"$tmp/bench.yaml" <<YAML
targets:
  - name: bench
    names: [CSIRO]
sources:
  timeout: 30m
  whois:
    - registry: bench
      dumps:
        - path: $tmp/bench.db.inetnum.gz
YAML

# select: the reference selection, printing "inetnum K, netname N".
select_awk='
  BEGIN { RS = "" }
  $1 == "inetnum:" {
    hit = 0; key = ""; name = ""
    n = split($0, l, "\n")
    for (i = 1; i <= n; i++) {
      if (l[i] ~ /^inetnum:/) { key = l[i]; sub(/^inetnum: +/, "", key) }
      if (l[i] ~ /^netname:/) { name = l[i]; sub(/^netname: +/, "", name) }
      if (l[i] ~ /^(netname|descr):/ && toupper(l[i]) ~ /(^|[^A-Z0-9_])CSIRO([^A-Z0-9_]|$)/) hit = 1
    }
    if (hit) print "inetnum " key ", netname " name
  }'

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
# measure OUT CMD...: wall seconds and peak RSS (MB) of CMD, appended to OUT.
measure() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$@"
  awk '{printf "%s %d\n", $1, $2 / 1024}' "$tmp/time" >>"$out"
}
for i in $(seq "$RUNS"); do
  measure "$tmp/a" sh -c "\"$BIN\" resolve --config \"$tmp/bench.yaml\" --format json >\"$tmp/snap.json\" 2>>\"$tmp/asfence.log\""
  measure "$tmp/b" sh -c "zcat \"$tmp/bench.db.inetnum.gz\" | awk '$select_awk' >\"$tmp/awk.txt\""
  measure "$tmp/c" sh -c "zcat \"$tmp/bench.db.inetnum.gz\" | grep -c '^inetnum:' >/dev/null"
done
jq -r '.targets[] | select(.name == "bench") | .prefixes[].evidence[].detail' "$tmp/snap.json" |
  sed -n 's/.*: \(inetnum [^;]*\); tied by .*/\1/p' | sort -u >"$tmp/asfence.txt"
sort -u "$tmp/awk.txt" -o "$tmp/awk.txt"
na=$(wc -l <"$tmp/asfence.txt"); nb=$(wc -l <"$tmp/awk.txt")
inc=$(jq '.incomplete | length' "$tmp/snap.json")
if [ "$inc" = 0 ] && [ "$na" -gt 0 ] && cmp -s "$tmp/asfence.txt" "$tmp/awk.txt"; then
  same="selected objects identical ($na)"
else
  same="SELECTIONS DIFFER (asfence $na, awk $nb, incomplete $inc)"
  status=1
fi
ta=$(awk '{print $1}' "$tmp/a" | median); ra=$(awk '{print $2}' "$tmp/a" | sort -n | tail -1)
tb=$(awk '{print $1}' "$tmp/b" | median); rb=$(awk '{print $2}' "$tmp/b" | sort -n | tail -1)
tc=$(awk '{print $1}' "$tmp/c" | median); rc=$(awk '{print $2}' "$tmp/c" | sort -n | tail -1)
ratio=$(awk -v x="$ta" -v y="$tb" 'BEGIN {printf "%.2fx", x / y}')
echo "| whois dumps: scan $objects inetnum objects ($mb MB uncompressed, gzip) for a target named CSIRO | ${ta} s, ${ra} MB peak RSS (\`asfence resolve --format json\`) | ${tb} s, ${rb} MB (\`zcat \\| awk\` selecting the same objects); ${tc} s, ${rc} MB (\`zcat \\| grep -c '^inetnum:'\`) | $ratio of zcat + awk; $same |"
exit "${status:-0}"
