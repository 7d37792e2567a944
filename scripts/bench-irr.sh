#!/usr/bin/env bash
# IRR benchmark: `asfence resolve` against bgpq4 expanding the same AS-SET
# from the same test IRRd server (asfence-irrd), in the same run.
#
# Dataset: built at run time from the real 2002 RIPE RIS table
# (integration/testdata/ris/bview.20020722.2337.bgpdump-m.txt.gz,
# bgpdump -m lines): one route object per distinct (prefix, origin) pair and
# AS-BENCH holding every origin through nested sets (see
# cmd/asfence-irrd/gen.go). Routes whose AS path ends in an AS_SET ({...})
# have no single origin and get no object; private origins get route objects
# but are left out of AS-BENCH (bgpq4 and asfence both skip them).
#
# Rows: the server with IRRd 4's !a (bgpq4 then asks one !a4AS-BENCH) and
# without it (-no-a: bgpq4 asks !iAS-BENCH,1 and one !g per ASN). asfence
# always expands level by level with !i and asks !g and !6 per ASN (it needs
# the origin of every prefix, which !a does not give). Times are wall-clock
# medians of RUNS runs per tool, after one warm-up run each. The prefix sets
# (IPv4; the dataset has no IPv6) must be identical.
#
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-5}
INPUT=${INPUT:-integration/testdata/ris/bview.20020722.2337.bgpdump-m.txt.gz}

BENCH_NAME=bench-irr
# shellcheck source=scripts/lib-irrd.sh
. scripts/lib-irrd.sh bgpq4 jq go

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1e9}'; }

# bench NAME LABEL: one row for the server NAME at $addr.
bench() {
  local name=$1 label=$2
  cat >"$tmp/$name.yaml" <<EOF
targets:
  - name: bench
    as_sets: [AS-BENCH]
sources:
  timeout: 300s
  irr:
    servers:
      - address: $addr
        sources: [BENCH]
EOF
  local a=() b=() c=() t0 i
  "$BIN" resolve --config "$tmp/$name.yaml" --format json >"$tmp/$name.json" 2>"$tmp/$name.asfence.log"
  bgpq4 -h "$addr" -S BENCH -l x AS-BENCH >"$tmp/$name.bgpq4" 2>"$tmp/$name.bgpq4.log"
  for i in $(seq "$RUNS"); do
    t0=$(now); "$BIN" resolve --config "$tmp/$name.yaml" --format json >"$tmp/$name.json" 2>>"$tmp/$name.asfence.log"; a+=($(( $(now) - t0 )))
    t0=$(now); bgpq4 -h "$addr" -S BENCH -l x AS-BENCH >"$tmp/$name.bgpq4" 2>>"$tmp/$name.bgpq4.log"; b+=($(( $(now) - t0 )))
    # asfence answers both families in one run; bgpq4 needs a second one.
    t0=$(now); bgpq4 -6 -h "$addr" -S BENCH -l x AS-BENCH >/dev/null 2>>"$tmp/$name.bgpq4.log"; c+=($(( $(now) - t0 + ${b[-1]} )))
  done
  local ta tb tc
  ta=$(printf '%s\n' "${a[@]}" | median)
  tb=$(printf '%s\n' "${b[@]}" | median)
  tc=$(printf '%s\n' "${c[@]}" | median)
  jq -r '.targets[] | select(.name == "bench") | .prefixes[].prefix' "$tmp/$name.json" | sort -u >"$tmp/$name.a"
  awk '$1 == "ip" && $4 == "permit" {print $5}' "$tmp/$name.bgpq4" | sort -u >"$tmp/$name.b"
  local inc na nb same
  inc=$(jq '.incomplete | length' "$tmp/$name.json")
  na=$(wc -l <"$tmp/$name.a"); nb=$(wc -l <"$tmp/$name.b")
  if [ "$inc" = 0 ] && [ "$na" -gt 0 ] && cmp -s "$tmp/$name.a" "$tmp/$name.b"; then
    same="prefix sets identical ($na)"
  else
    same="PREFIX SETS DIFFER (asfence $na, bgpq4 $nb, incomplete $inc)"
    status=1
  fi
  local ratio ratio2
  ratio=$(awk -v x="$ta" -v y="$tb" 'BEGIN {printf "%.2fx", x / y}')
  ratio2=$(awk -v x="$ta" -v y="$tc" 'BEGIN {printf "%.2fx", x / y}')
  last_tb=$tb
  echo "| IRR: expand AS-BENCH (IPv4 + IPv6 per ASN), $label | ${ta} s (\`asfence resolve --format json\`) | ${tb} s IPv4 only (\`bgpq4 -S BENCH -l x\`); ${tc} s IPv4 + IPv6 (\`bgpq4\` and \`bgpq4 -6\`) | $ratio of bgpq4 IPv4 only, $ratio2 of bgpq4 IPv4 + IPv6 (goal <= 1.0x); $same |"
}

# text NAME LABEL: the same resolve printing the per-ASN table instead of
# the JSON snapshot (113k prefixes with evidence, about 40 MB).
text() {
  local name=$1 label=$2 a=() t0 i
  for i in $(seq "$RUNS"); do
    t0=$(now); "$BIN" resolve --config "$tmp/$name.yaml" --format text >/dev/null 2>>"$tmp/$name.asfence.log"; a+=($(( $(now) - t0 )))
  done
  local ta
  ta=$(printf '%s\n' "${a[@]}" | median)
  echo "| IRR: expand AS-BENCH, $label, text output | ${ta} s (\`asfence resolve --format text\`) | ${last_tb} s (bgpq4, row above) | $(awk -v x="$ta" -v y="$last_tb" 'BEGIN {printf "%.2fx", x / y}'); no JSON encoding |"
}

status=0
start_server a
bench a "server with !a"
start_server noa -no-a
bench noa "server without !a"
text noa "server without !a"

# The IRR client alone (connect, expand level by level, !g and !6 per ASN),
# without the engine's merge and the JSON encoding of every prefix with its
# evidence, against the same bgpq4 run on the server without !a.
cl=$(IRR_BENCH_ADDR=$addr IRR_BENCH_SOURCE=BENCH go test -run '^$' -bench '^BenchmarkClientAS$' -benchtime "${RUNS}x" ./asn/irr/ 2>/dev/null |
  awk '/^BenchmarkClientAS/ {printf "%.3f", $3 / 1e9}')
if [ -n "$cl" ]; then
  ratio=$(awk -v x="$cl" -v y="$last_tb" 'BEGIN {printf "%.2fx", x / y}')
  echo "| IRR client only (asn/irr: expand AS-BENCH, route + route6 per ASN), server without !a | ${cl} s (Go benchmark, mean of $RUNS) | ${last_tb} s (bgpq4, row above) | $ratio; dataset: $gen |"
else
  echo "| IRR client only | failed | | go test -bench BenchmarkClientAS failed |"
  status=1
fi
exit $status
