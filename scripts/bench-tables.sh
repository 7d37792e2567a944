#!/usr/bin/env bash
# Routing-table benchmarks, asfence next to bgpdump in the same run, with
# wall time, CPU time (user + system) and peak RSS from /usr/bin/time:
#  - the real 2002 RIPE RIS RIB (TABLE_DUMP, 115,521 records;
#    asn/tables/testdata/mrt/bview.20020722.2337.gz): `asfence resolve` of a
#    one-ASN target (AS701) with a config holding only that table, vs
#    `bgpdump -m FILE | awk` selecting the prefixes whose path ends in AS701.
#    The prefix sets must be identical. Goal: asfence <= 0.5x bgpdump's time.
#  - TABLE_DUMP_V2 RIBs written by scripts/mkrib from the real tables (the
#    2002 RIB's IPv4 prefixes and paths, the 2016 update file's IPv6 prefixes
#    and 4-byte paths; kept in out/bench/ between runs): 100k IPv4 prefixes x
#    10 peers beside bgpdump (sets identical), and the full size, 1M prefixes
#    (15 % IPv6) x 10 peers: scan + resolve time and peak RSS, goal <= 200
#    MB. bgpdump 1.6.2 slows down badly on these files once IPv6 records
#    follow the IPv4 ones (100k prefixes with 15 % IPv6: 80 s of CPU, half of
#    it system time; 100k IPv4 alone: 1.7 s, the 15k IPv6 alone: 0.6 s), so for the
#    full size it runs beside asfence only with FULL_REF=1.
# Times are medians of RUNS runs (default 5; 3 for the generated RIBs)
# after a warm-up; RSS the largest. On a busy machine wall times wander;
# the CPU times are steadier. Prints markdown rows:
# | what | asfence | reference | ratio / notes |.
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-5}
RIB=${RIB:-asn/tables/testdata/mrt/bview.20020722.2337.gz}
FULL=${FULL:-out/bench/rib-1m-10peers.gz}
SMALL=${SMALL:-out/bench/rib-100k-ipv4-10peers.gz}
for t in bgpdump /usr/bin/time jq go awk; do
  command -v "$t" >/dev/null || { echo "bench-tables: $t is missing (make deps)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure NAME CMD...: runs CMD under /usr/bin/time; appends "secs maxrss_kb".
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M %U %S' -o "$tmp/$name.time" "$@"
  cat "$tmp/$name.time" >>"$tmp/$name.runs"
}
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
secs() { awk '{print $1}' "$tmp/$1.runs" | median; }
rss_mb() { awk '{print $2}' "$tmp/$1.runs" | sort -g | tail -1 | awk '{printf "%.0f", $1/1024}'; }
cpu() { awk '{print $3 + $4}' "$tmp/$1.runs" | median; }

# config FILE ASN: a config whose only source is the table FILE.
config() {
  cat <<EOF
targets:
  - name: bench
    asns: [$2]
sources:
  timeout: 600s
  tables:
    - format: mrt
      path: $1
      source: bench
EOF
}

# one LABEL FILE ASN RUNS REFRUNS: a row.
one() {
  local label=$1 file=$2 asn=$3 runs=$4 refruns=${5:-0} i
  config "$file" "$asn" >"$tmp/$label.yaml"
  local a="$label.asfence" b="$label.bgpdump"
  # warm-up (page cache), not counted
  "$BIN" resolve --config "$tmp/$label.yaml" --format json >"$tmp/$label.json" 2>"$tmp/$label.log"
  for i in $(seq "$runs"); do
    measure "$a" sh -c "'$BIN' resolve --config '$tmp/$label.yaml' --format json >'$tmp/$label.json' 2>>'$tmp/$label.log'"
  done
  for i in $(seq "${refruns:-0}"); do
    measure "$b" sh -c "bgpdump -q -m '$file' | awk -F'|' '{ n = split(\$7, p, \" \"); if (p[n] == \"$asn\") print \$6 }' | sort -u >'$tmp/$label.bgpdump'"
  done
  jq -r '.targets[] | select(.name == "bench") | .prefixes[].prefix' "$tmp/$label.json" | sort -u >"$tmp/$label.asfence"
  local inc nb
  inc=$(jq '.incomplete | length' "$tmp/$label.json")
  na=$(wc -l <"$tmp/$label.asfence")
  ta=$(secs "$a")
  ma=$(rss_mb "$a")
  ca=$(cpu "$a")
  if [ "$refruns" = 0 ] || [ -z "$refruns" ]; then
    [ "$inc" = 0 ] && [ "$na" -gt 0 ] || status=1
    return
  fi
  nb=$(wc -l <"$tmp/$label.bgpdump")
  if [ "$inc" = 0 ] && [ "$na" -gt 0 ] && cmp -s "$tmp/$label.asfence" "$tmp/$label.bgpdump"; then
    same="prefix sets identical ($na prefixes of AS$asn)"
  else
    same="PREFIX SETS DIFFER (asfence $na, bgpdump $nb, incomplete $inc)"
    status=1
  fi
  tb=$(secs "$b")
  mb=$(rss_mb "$b")
  cb=$(cpu "$b")
  ratio=$(awk -v x="$ta" -v y="$tb" 'BEGIN {r = x / y; printf (r < 0.1 ? "%.3fx" : "%.2fx"), r}')
  cratio=$(awk -v x="$ca" -v y="$cb" 'BEGIN {r = x / y; printf (r < 0.1 ? "%.3fx" : "%.2fx"), r}')
}

status=0
row() { # LABEL WHAT: prints the row of the last `one`
  echo "| $2 | ${ta} s (CPU ${ca} s), ${ma} MB peak RSS | ${tb} s (CPU ${cb} s), ${mb} MB (\`bgpdump -m FILE \\| awk\`) | $ratio wall, $cratio CPU; $same |"
}
one rib2002 "$RIB" 701 "$RUNS" "$RUNS"
row rib2002 "tables: real 2002 RIS RIB (TABLE_DUMP, 115,521 records, 1.2 MB gzip), \`asfence resolve\` of a one-ASN target (config with only that table), median of $RUNS; goal <= 0.5x"

gen() { # PREFIXES IPV6-SHARE FILE
  if [ ! -s "$3" ] || [ scripts/mkrib/main.go -nt "$3" ]; then
    mkdir -p "$(dirname "$3")"
    go run ./scripts/mkrib -prefixes "$1" -ipv6 "$2" -peers 10 -o "$3.tmp" 2>>"$tmp/mkrib.log"
    mv "$3.tmp" "$3"
  fi
}
small_runs=$(( RUNS < 3 ? RUNS : 3 ))
gen 100000 0 "$SMALL"
one small "$SMALL" 701 "$small_runs" "$small_runs"
row small "tables: TABLE_DUMP_V2 RIB, 100k IPv4 prefixes x 10 peers (scripts/mkrib, $(du -m "$SMALL" | awk '{print $1}') MB gzip), one-ASN resolve, median of $small_runs"

gen 1000000 0.15 "$FULL"
one full "$FULL" 701 "$small_runs" "${FULL_REF:+1}"
size=$(du -m "$FULL" | awk '{print $1}')
if [ -n "${FULL_REF:-}" ]; then
  row full "tables: full-size TABLE_DUMP_V2 RIB, 1M prefixes (15 % IPv6) x 10 peers (scripts/mkrib, $size MB gzip), scan + one-ASN resolve, median of $small_runs; goal <= 200 MB"
else
  echo "| tables: full-size TABLE_DUMP_V2 RIB, 1M prefixes (15 % IPv6) x 10 peers (scripts/mkrib, $size MB gzip), scan + one-ASN resolve, median of $small_runs | ${ta} s (CPU ${ca} s), ${ma} MB peak RSS | - (bgpdump slows down on this mix of IPv4 and IPv6 records: FULL_REF=1 runs it) | goal <= 200 MB peak RSS; $na prefixes of AS701 |"
fi
exit $status
