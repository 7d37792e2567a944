#!/usr/bin/env bash
# Live watch latency (integration/watch_bench_test.go): from an upstream's
# announcement of a new target prefix to the RTBH route at BIRD, through a
# BIRD route reflector that feeds asfence (feed neighbor), next to the same
# announcement reaching a BIRD peering with the route reflector directly.
# Prints one markdown row: | what | asfence | reference | ratio / notes |.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${BENCH_WATCH_ROUNDS:-15}
out=$(ASFENCE_BENCH=1 ASFENCE_BENCH_ROUNDS="$rounds" go test -count=1 -run '^TestWatchLatencyBench$' -v -timeout 10m ./integration/ 2>&1) || {
  echo "$out" >&2
  exit 1
}
line=$(echo "$out" | grep -o 'watch-latency .*' | head -1)
a=$(echo "$line" | sed -n 's/.*asfence-ms=\([0-9.]*\).*/\1/p')
b=$(echo "$line" | sed -n 's/.*bird-ms=\([0-9.]*\).*/\1/p')
echo "| watch: upstream announces a new target /24, until the RTBH route is at BIRD (feed neighbor: BIRD route reflector), median of $rounds | $a ms | $b ms (the same announcement at a BIRD peering with the route reflector) | goal < 2000 ms median; includes the watch's 200 ms burst wait |"
