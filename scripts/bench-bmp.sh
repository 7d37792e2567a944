#!/usr/bin/env bash
# BMP benchmark (internal/bmp/bench_test.go): a full-size IPv4 table (1M
# routes built by scripts/mkrib from the real RIS tables) injected into a
# gobgpd upstream (its MRT injection passed no IPv6 route on to the routers
# here, so the table is IPv4 only); a gobgpd router learns it and
# sends it both to a BIRD over BGP and to asfence's BMP receiver
# (pre-policy). Prints markdown rows: the time from the router's session
# with the upstream coming up until the receiver held every route, next to
# the time until BIRD held them (same router, same run), and the receiver
# process's memory once a second gobgpd router has sent the same table.
# BMP_BENCH_PREFIXES (default 1000000) sets the table size.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BMP_BENCH_PREFIXES:-1000000}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/asfence-bench
mkdir -p "$cache"
rib="$cache/rib-$n-1peer-v4.gz"
if [ ! -s "$rib" ]; then
  go run ./scripts/mkrib -prefixes "$n" -ipv6 0 -peers 1 -o "$rib.tmp" >&2
  mv "$rib.tmp" "$rib"
fi
out=$(BMP_BENCH_RIB="$rib" BMP_BENCH_ROUTES="$n" go test -run '^$' -bench 'BenchmarkBMPFullTable' -benchtime 1x -count 1 -timeout 120m ./internal/bmp/ 2>&1) || {
  echo "$out" >&2
  exit 1
}
metric() {
  echo "$out" | awk -v m="$1" '$1 ~ "^BenchmarkBMPFullTable" { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }' | head -1
}
fmt() { awk -v x="$1" 'BEGIN { if (x == "") print "n/a"; else printf "%.2f", x }'; }
routes=$(metric routes)
echo "| BMP: a ${routes:-?}-route table from a gobgpd router, from its upstream session up until the receiver held all | $(fmt "$(metric bmp-s)") s | $(fmt "$(metric bird-s)") s (the same router to BIRD over BGP) | $(fmt "$(metric ratio)")x (goal <= 1.0x) |"
echo "| BMP: the same table from a second gobgpd router, receiver process peak RSS | $(fmt "$(metric peak-rss-MiB)") MiB | - | goal <= 600 MB; after GC: RSS $(fmt "$(metric rss-MiB)") MiB, live heap $(fmt "$(metric heap-MiB)") MiB ($(fmt "$(metric heap-B/route)") B/route) |"
