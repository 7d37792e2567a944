#!/usr/bin/env bash
# Scale benchmark: one origin with N /24 route objects (every other /24 from
# 32.0.0.0, so aggregation cannot merge them: every list has N entries),
# served by the test IRRd server (asfence-irrd -gen-prefixes), at 112k and
# at 1M prefixes, the rows of both sizes side by side (cost should grow
# linearly: the 1M row about 8.9x the 112k row).
#
# In one run, against the same server:
#   - bgpq4 -A -R 32 -J -z (Junos route-filter-list), the reference;
#   - asfence generate --vendor junos (resolving from the server; goal:
#     <= 1.0x bgpq4's wall time and peak RSS), its entries compared with
#     bgpq4's;
#   - asfence generate --vendor all (goal: <= 3x bgpq4's time);
#   - reading the resolved snapshot: asfence resolve --snapshot F --format
#     text (goal at 1M: <= 1 s, <= 300 MB).
# Wall time and peak RSS (GNU time) are medians of RUNS runs (after a
# warm-up run unless WARMUP=0).
#
# Run from the repository root after `make build`.
set -euo pipefail
BIN=${BIN:-bin/asfence}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
SIZES=${SIZES:-112000 1000000}
for t in bgpq4 go awk /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench-scale: $t not found" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench-scale: $BIN missing: run make build first" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/asfence-irrd" ./cmd/asfence-irrd

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s", m}'; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2fx", x / y}'; }
# measure NAME CMD...: runs CMD RUNS times (after one warm-up run) and sets
# NAME_t (median wall seconds) and NAME_m (median peak RSS, MB).
measure() {
  local name=$1; shift
  local ts=() ms=() i
  if [ "$WARMUP" != 0 ]; then
    "$@" >/dev/null 2>"$tmp/$name.err" || { echo "bench-scale: $name failed:" >&2; cat "$tmp/$name.err" >&2; return 1; }
  fi
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %M" -o "$tmp/$name.time" "$@" >/dev/null 2>"$tmp/$name.err" ||
      { echo "bench-scale: $name failed:" >&2; cat "$tmp/$name.err" >&2; return 1; }
    ts+=("$(awk '{print $1}' "$tmp/$name.time")"); ms+=("$(awk '{printf "%.0f", $2 / 1024}' "$tmp/$name.time")")
  done
  printf -v "${name}_t" '%s' "$(printf '%s\n' "${ts[@]}" | median)"
  printf -v "${name}_m" '%s' "$(printf '%s\n' "${ms[@]}" | median)"
}

status=0
declare -A row
for n in $SIZES; do
  label=$(awk -v n="$n" 'BEGIN {if (n >= 1000000) printf "%gM", n / 1e6; else printf "%gk", n / 1e3}')
  "$tmp/asfence-irrd" -gen-prefixes "$n" -gen-out "$tmp/$n.rpsl" 2>/dev/null
  "$tmp/asfence-irrd" -listen 127.0.0.1:0 -addr-file "$tmp/$n.addr" "$tmp/$n.rpsl" 2>"$tmp/$n.log" &
  pids+=($!)
  deadline=$((SECONDS + 120))
  until [ -s "$tmp/$n.addr" ]; do
    if ! kill -0 "${pids[-1]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "bench-scale: server for $n did not start" >&2; cat "$tmp/$n.log" >&2; exit 1
    fi
    sleep 0.1
  done
  addr=$(cat "$tmp/$n.addr")
  cat >"$tmp/$n.yaml" <<EOC
targets:
  - name: bench
    as_sets: [AS-BENCH]
sources:
  timeout: 600s
  irr:
    servers:
      - address: $addr
        sources: [BENCH]
policy:
  allow_bogons: true
  ipv4: {min_length: 1}
  ipv6: {min_length: 1}
EOC
  measure ref bgpq4 -h "$addr" -S BENCH -4 -A -R 32 -J -z -l ASFENCE-V4 AS-BENCH
  bgpq4 -h "$addr" -S BENCH -4 -A -R 32 -J -z -l ASFENCE-V4 AS-BENCH >"$tmp/$n.bgpq4"
  measure junos "$BIN" generate --config "$tmp/$n.yaml" --vendor junos --out "$tmp/$n.junos"
  mkdir -p "$tmp/$n.all"
  measure all "$BIN" generate --config "$tmp/$n.yaml" --vendor all --out "$tmp/$n.all"
  "$BIN" resolve --config "$tmp/$n.yaml" --format json >"$tmp/$n.json" 2>/dev/null
  measure read "$BIN" resolve --config "$tmp/$n.yaml" --snapshot "$tmp/$n.json" --format text
  kill "${pids[-1]}" 2>/dev/null || true

  # The route-filter-list entries must be the same set.
  awk '/route-filter-list ASFENCE-V4/ {on=1; next} on && /}/ {on=0} on && /\/[0-9]+ / {gsub(/^ +|;$/, ""); print}' "$tmp/$n.junos" | sort >"$tmp/$n.a"
  awk '/^ *[0-9].*\/[0-9]+ (upto|exact|prefix-length-range) / {gsub(/^ +|;$/, ""); print}' "$tmp/$n.bgpq4" | sort >"$tmp/$n.b"
  na=$(wc -l <"$tmp/$n.a"); nb=$(wc -l <"$tmp/$n.b")
  if [ "$na" -eq "$n" ] && cmp -s "$tmp/$n.a" "$tmp/$n.b"; then same="entries identical ($na)"; else same="ENTRIES DIFFER (asfence $na, bgpq4 $nb)"; status=1; fi
  size=$(( $(wc -c <"$tmp/$n.json") / 1000000 ))
  row[ref.$n]="${ref_t} s, ${ref_m} MB"
  row[junos.$n]="| scale $label: \`asfence generate --vendor junos\` from the test IRRd ($label /24s of one origin) | ${junos_t} s, ${junos_m} MB peak RSS | ${ref_t} s, ${ref_m} MB (\`bgpq4 -A -R 32 -J -z\`) | $(ratio "$junos_t" "$ref_t") time, $(ratio "$junos_m" "$ref_m") memory (goal <= 1.0x both); $same |"
  row[all.$n]="| scale $label: \`asfence generate --vendor all\` (12 files) | ${all_t} s, ${all_m} MB peak RSS | ${ref_t} s (bgpq4 row above) | $(ratio "$all_t" "$ref_t") time (goal <= 3x) |"
  row[read.$n]="| scale $label: read a $label-prefix snapshot (${size} MB JSON; \`asfence resolve --snapshot F --format text\`) | ${read_t} s, ${read_m} MB peak RSS | - | goal at 1M: <= 1 s, <= 300 MB |"
  eval "t_junos_$n=$junos_t t_all_$n=$all_t t_read_$n=$read_t t_ref_$n=$ref_t"
done
for k in junos all read; do
  for n in $SIZES; do echo "${row[$k.$n]}"; done
done
set -- $SIZES
if [ $# -eq 2 ]; then
  growth() { eval "awk -v a=\$t_${1}_$2 -v b=\$t_${1}_$3 'BEGIN {printf \"%.1fx\", b / a}'"; }
  echo "| scale: growth $1 -> $2 prefixes ($(awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", b / a}') more) | junos $(growth junos "$1" "$2"), all $(growth all "$1" "$2"), snapshot read $(growth read "$1" "$2") | bgpq4 $(growth ref "$1" "$2") | linear = the prefix ratio |"
fi
exit $status
