#!/usr/bin/env bash
# Report and explain benchmarks on a large snapshot: the real 2002 RIPE RIS
# table served as route objects by the test IRRd (AS-BENCH, about 112k
# prefixes, see scripts/bench-irr.sh) and the same table read as an MRT RIB,
# resolved once into a snapshot whose prefixes come from two kinds of source
# (irr-route, routing-table). `asfence report` (JSON and HTML) and
# `asfence explain` read that snapshot; beside them, `asfence generate
# --vendor junos` of the same snapshot (reading the snapshot and the policy
# are common to all three). No reference tool makes such a report.
# Wall time (median of RUNS) and peak RSS from /usr/bin/time.
#
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-3}
INPUT=${INPUT:-integration/testdata/ris/bview.20020722.2337.bgpdump-m.txt.gz}
RIB=${RIB:-asn/tables/testdata/mrt/bview.20020722.2337.gz}

BENCH_NAME=bench-report
# shellcheck source=scripts/lib-irrd.sh
. scripts/lib-irrd.sh /usr/bin/time go awk
start_server bench

policy_block='policy:
  allow_bogons: true
  ipv4: {min_length: 1}
  ipv6: {min_length: 1}
targets:
  - name: bench
    as_sets: [AS-BENCH]'
printf '%s\nsources:\n  timeout: 600s\n  irr:\n    servers:\n      - {address: "%s", sources: [BENCH]}\n  tables:\n    - {format: mrt, path: "%s", source: rrc00}\n' \
  "$policy_block" "$addr" "$PWD/$RIB" >"$tmp/bench.yaml"
printf '%s\n' "$policy_block" >"$tmp/policy.yaml"
"$BIN" resolve --config "$tmp/bench.yaml" --format json >"$tmp/snap.json" 2>"$tmp/resolve.log"
nprefixes=$(grep -c '"prefix":' "$tmp/snap.json" || true)
pol="$tmp/policy.yaml"

measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  cat "$tmp/$name.time" >>"$tmp/$name.runs"
}
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
secs() { awk '{print $1}' "$tmp/$1.runs" | median; }
rss_mb() { awk '{print $2}' "$tmp/$1.runs" | sort -g | tail -1 | awk '{printf "%.0f", $1/1024}'; }

# An address inside the first IPv4 prefix of the snapshot.
addr4=$(grep -o -m1 '"prefix":"[0-9.]*/[0-9]*"' "$tmp/snap.json" | cut -d'"' -f4)
addr4=${addr4%/*}
for _ in $(seq "$RUNS"); do
  measure json "$BIN" report --config "$pol" --snapshot "$tmp/snap.json" --format json
  measure html "$BIN" report --config "$pol" --snapshot "$tmp/snap.json" --format html
  measure explain "$BIN" explain --config "$pol" --snapshot "$tmp/snap.json" "$addr4"
  measure junos "$BIN" generate --vendor junos --config "$pol" --snapshot "$tmp/snap.json"
done
grep -q '"routing-table"' "$tmp/json.out" && grep -q '"irr-route"' "$tmp/json.out" || { echo "bench-report: the report lacks a kind" >&2; exit 1; }
grep -q '<svg' "$tmp/html.out" || { echo "bench-report: no chart in the HTML report" >&2; exit 1; }
grep -q ': BLOCKED' "$tmp/explain.out" || { echo "bench-report: explain did not find $addr4" >&2; exit 1; }
ref="$(secs junos) s, $(rss_mb junos) MB (\`asfence generate --vendor junos\`, same snapshot)"
echo "| report: \`asfence report --format json\` of $nprefixes prefixes (RIS 2002 as IRR route objects and as an MRT RIB), median of $RUNS | $(secs json) s, $(rss_mb json) MB peak RSS | $ref | includes reading the snapshot and the policy; no reference tool makes such a report |"
echo "| report: the same as one HTML page (\`--format html\`) | $(secs html) s, $(rss_mb html) MB | $ref | $(wc -c <"$tmp/html.out" | awk '{printf "%.0f", $1/1024}') KB page |"
echo "| explain: one address in the same snapshot (\`asfence explain\`) | $(secs explain) s, $(rss_mb explain) MB | $ref | includes reading the snapshot, the policy and the list entries |"
