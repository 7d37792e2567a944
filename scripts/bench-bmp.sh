#!/usr/bin/env bash
# BMP benchmark (integration/bmp_bench_test.go): a full-size table (1M routes,
# 80 % IPv4 and 20 % IPv6, built by scripts/mkrib -bird from the real RIS
# tables) held by a BIRD upstream as static routes; an FRR router (bgpd with
# its bmp module) learns it and sends it both to a BIRD over BGP and to
# the asfence daemon over BMP (pre-policy). Prints markdown rows: the time
# from the router's session with the upstream coming up until the daemon
# held every route, next to the time until BIRD held them (same router,
# same run), and the daemon process's memory once a second FRR router has
# sent the same table.
#
# The full-size run takes about five minutes on 2 cores (BIRD alone takes
# 20 s and 1.5 GB to parse the 144 MB of static routes): it runs with
# FULL=1. Without it the table has 100k routes.
# BMP_BENCH_PREFIXES sets the size.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FULL:-}" = 1 ]; then
  n=${BMP_BENCH_PREFIXES:-1000000}
else
  n=${BMP_BENCH_PREFIXES:-100000}
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/asfence-bench
mkdir -p "$cache"
statics="$cache/statics-$n.conf"
if [ ! -s "$statics" ]; then
  go run ./scripts/mkrib -bird -prefixes "$n" -ipv6 0.2 -o "$statics.tmp" >&2
  mv "$statics.tmp" "$statics"
fi
out=$(ASFENCE_BENCH=1 BMP_BENCH_STATICS="$statics" go test -count=1 -run '^TestBMPFullTableBench$' -v -timeout 120m ./integration/ 2>&1) || {
  echo "$out" >&2
  exit 1
}
line=$(echo "$out" | grep -o 'bmp-full-table .*' | head -1)
metric() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
fmt() { awk -v x="$1" 'BEGIN { if (x == "") print "n/a"; else printf "%.2f", x }'; }
routes=$(metric routes)
v6=$(metric ipv6)
echo "| BMP: a ${routes:-?}-route table (${v6:-?} IPv6; scripts/mkrib -bird) from an FRR router fed by a BIRD upstream, from its upstream session up until the daemon held all (its /api/v1/bmp count) | $(fmt "$(metric bmp-s)") s | $(fmt "$(metric bird-s)") s (the same router to BIRD over BGP, same run) | $(metric ratio)x (goal <= 1.0x) |"
echo "| BMP: the same table from a second FRR router, daemon process peak RSS (VmHWM) | $(fmt "$(metric peak-rss-MiB)") MiB | - | goal <= 600 MB; RSS $(fmt "$(metric rss-MiB)") MiB with 2 x ${routes:-?} routes held |"
