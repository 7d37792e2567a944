#!/usr/bin/env bash
# Filter benchmarks: prefix aggregation, rendering all 12 vendors, and
# `asfence generate` beside bgpq4 producing the same Junos and Cisco lists
# from the same test IRRd server, in the same run.
#
# Dataset: the real 2002 RIPE RIS table
# (integration/testdata/ris/bview.20020722.2337.bgpdump-m.txt.gz),
# turned into route objects and AS-BENCH by asfence-irrd -gen-bgpdump (see
# scripts/bench-irr.sh), served by asfence-irrd. asfence resolves AS-BENCH
# once into a snapshot (about 112k prefixes); the policy keeps everything
# (allow_bogons, min_length 1) so that asfence and bgpq4 get the same input.
# Times are wall-clock medians of RUNS runs after one warm-up run; Go
# benchmarks report their mean. bgpq4's time includes its IRR queries to the
# local server; asfence's "generate" time includes reading the 23 MB
# snapshot JSON, the policy and the aggregation.
#
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-5}
INPUT=${INPUT:-integration/testdata/ris/bview.20020722.2337.bgpdump-m.txt.gz}

BENCH_NAME=bench-filters
# shellcheck source=scripts/lib-irrd.sh
. scripts/lib-irrd.sh bgpq4 go awk
start_server bench

cat >"$tmp/bench.yaml" <<EOF
targets:
  - name: bench
    as_sets: [AS-BENCH]
sources:
  timeout: 300s
  irr:
    servers:
      - address: $addr
        sources: [BENCH]
policy:
  allow_bogons: true
  ipv4: {min_length: 1}
  ipv6: {min_length: 1}
EOF
"$BIN" resolve --config "$tmp/bench.yaml" --format json >"$tmp/snap.json" 2>"$tmp/resolve.log"
nprefixes=$(grep -c '"prefix":' "$tmp/snap.json" || true)

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1e9}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2fx", x / y}'; }
# gobench PKG PATTERN [ENV...]: mean seconds per op of each matching Go benchmark, "name secs" lines.
gobench() {
  local pkg=$1 pat=$2; shift 2
  env "$@" go test -run '^$' -bench "$pat" -benchtime "${RUNS}x" "$pkg" 2>"$tmp/gobench.log" |
    awk '/^Benchmark/ {n=$1; sub(/-[0-9]+$/, "", n); printf "%s %.3f\n", n, $3 / 1e9}'
}

status=0

# 1. Aggregation of 1M random IPv4 prefixes.
agg=$(gobench ./prefixset/ '^BenchmarkAggregate1M$')
cov=$(awk '$1 ~ /coverage/ {print $2}' <<<"$agg")
rf=$(awk '$1 ~ /route-filter/ {print $2}' <<<"$agg")
if [ -z "$cov" ] || [ -z "$rf" ]; then
  echo "| filters: aggregate 1M prefixes | failed | | see go test output |"; status=1
else
  echo "| filters: aggregate 1M random IPv4 prefixes (coverage; route filter with le 32) | ${cov} s; ${rf} s (Go benchmark, mean of $RUNS) | goal < 0.3 s | no reference tool; property tests check exactness |"
fi

# 2. Rendering the RIS table for all 12 vendors (aggregations once, templates concurrently).
ren=$(gobench ./filters/ '^BenchmarkRenderAll$' ASFENCE_BENCH_SNAPSHOT="$tmp/snap.json" | awk '{print $2}')
if [ -z "$ren" ]; then
  echo "| filters: render all 12 vendors | failed | | see go test output |"; status=1
else
  echo "| filters: render $nprefixes prefixes (RIS 2002) for all 12 vendors | ${ren} s (Go benchmark: Prepare + RenderAll, mean of $RUNS) | goal < 1 s | json output alone is ~50 MB (every prefix with its evidence) |"
fi
single=$(gobench ./filters/ '^BenchmarkRenderVendor$' ASFENCE_BENCH_SNAPSHOT="$tmp/snap.json")

# 3. asfence generate next to bgpq4 producing the same list.
# entries VENDOR FILE: the list entries, normalised, one per line.
entries() {
  case $1 in
    junos) awk '/^ *[0-9].*\/[0-9]+ (upto|exact|prefix-length-range) / {gsub(/^ +|;$/, ""); print}' "$2" ;;
    cisco-ios) awk '$1 == "ip" && $2 == "prefix-list" && $4 == "permit" {$1=$2=$3=$4=""; sub(/^ +/, ""); print}' "$2" ;;
  esac | sort
}
for vendor in junos cisco-ios; do
  case $vendor in
    junos) bflags=(-J -z); label="Junos route-filter-list" ;;
    cisco-ios) bflags=(); label="Cisco prefix-list" ;;
  esac
  gen() { "$BIN" generate --config "$tmp/bench.yaml" --snapshot "$tmp/snap.json" --vendor "$vendor" --out "$tmp/$vendor.asfence" 2>"$tmp/$vendor.log"; }
  ref() { bgpq4 -h "$addr" -S BENCH -4 -A -R 32 "${bflags[@]}" -l ASFENCE-V4 AS-BENCH >"$tmp/$vendor.bgpq4" 2>"$tmp/$vendor.bgpq4.log"; }
  gen; ref
  a=(); b=()
  for i in $(seq "$RUNS"); do
    t0=$(now); gen; a+=($(( $(now) - t0 )))
    t0=$(now); ref; b+=($(( $(now) - t0 )))
  done
  ta=$(printf '%s\n' "${a[@]}" | median)
  tb=$(printf '%s\n' "${b[@]}" | median)
  entries "$vendor" "$tmp/$vendor.asfence" >"$tmp/$vendor.a"
  entries "$vendor" "$tmp/$vendor.bgpq4" >"$tmp/$vendor.b"
  na=$(wc -l <"$tmp/$vendor.a"); nb=$(wc -l <"$tmp/$vendor.b")
  if [ "$na" -gt 0 ] && cmp -s "$tmp/$vendor.a" "$tmp/$vendor.b"; then
    same="entries identical ($na)"
  else
    same="ENTRIES DIFFER (asfence $na, bgpq4 $nb)"; status=1
  fi
  rt=$(awk -v v="$vendor" '$1 == "BenchmarkRenderVendor/" v {print $2}' <<<"$single")
  echo "| filters: $label, $nprefixes prefixes | ${ta} s (\`asfence generate --vendor $vendor --snapshot\`, incl. reading the 23 MB snapshot JSON and the policy; aggregation + render alone ${rt:-?} s) | ${tb} s (\`bgpq4 -A -R 32 ${bflags[*]}\`, incl. its IRR queries to the test IRRd) | $(ratio "$ta" "$tb") (render alone: $(ratio "${rt:-0}" "$tb")); $same |"
done
exit $status
