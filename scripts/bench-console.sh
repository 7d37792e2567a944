#!/usr/bin/env bash
# Review console benchmarks (integration/console_bench_test.go), on the real
# daemon binary: server time to first byte and page weight of the overview
# and of the first page of a run that adds 100k prefixes (held; then approved,
# when the vendor-file diffs are on the page too), next to the JSON API's
# answers for the same data (the run summary, a page of 100 prefixes)
# measured in the same run; the daemon's peak RSS.
# Prints markdown rows: | what | asfence | reference | ratio / notes |.
# Medians of BENCH_COUNT runs (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-3}
out=$(go test -run '^$' -bench 'BenchmarkConsole100k' -benchtime 1x -count "$count" -timeout 30m ./integration/ 2>&1) || {
  echo "$out" >&2
  exit 1
}
median() {
  echo "$out" | awk -v b="$1" -v m="$2" '
    $1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } print v[int((NR + 1) / 2)] }'
}
m() { median BenchmarkConsole100k "$1"; }
f1() { awk -v x="$1" 'BEGIN { if (x == "n/a") print x; else printf "%.1f", x }'; }
echo "| console: overview, server time to first byte / page weight (median of $count) | $(f1 "$(m overview-ttfb-ms)") ms / $(f1 "$(m overview-KB)") KB | $(f1 "$(m status-api-ttfb-ms)") ms / $(f1 "$(m status-api-KB)") KB (GET /api/v1/status) | goal < 100 ms and < 300 KB |"
echo "| console: held run adding 100k prefixes, first page: first view / again / weight | $(f1 "$(m run100k-first-ttfb-ms)") ms / $(f1 "$(m run100k-ttfb-ms)") ms / $(f1 "$(m run100k-KB)") KB | $(f1 "$(m run100k-api-ttfb-ms)") ms / $(f1 "$(m run100k-api-KB)") KB (GET /api/v1/runs/{id}, the summary); $(f1 "$(m run100k-api-page-ttfb-ms)") ms / $(f1 "$(m run100k-api-page-KB)") KB (a page of 100 prefixes with evidence) | goal < 100 ms and < 300 KB |"
echo "| console: the same run's last page of added prefixes (100 rows) | $(f1 "$(m run100k-lastpage-ttfb-ms)") ms / $(f1 "$(m run100k-lastpage-KB)") KB | - | |"
echo "| console: the same run approved (page with the vendor-file diffs): first view / again / weight | $(f1 "$(m approved100k-first-ttfb-ms)") ms / $(f1 "$(m approved100k-ttfb-ms)") ms / $(f1 "$(m approved100k-KB)") KB | - | diffs shown 60 lines per file, the rest paged |"
echo "| console: daemon peak RSS through the above (VmHWM) | $(f1 "$(m daemon-peak-rss-MB)") MB | - | 100k-prefix snapshot, policy, guard, 4 vendor files |"
