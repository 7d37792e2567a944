#!/usr/bin/env bash
# BGP benchmarks, asfence's embedded speaker next to BIRD, measured in the
# same run against the same receiving BIRD (integration/bgp_bench_test.go):
#  - 100k RTBH /24 routes: from session Established until BIRD holds all of
#    them; reference: a second BIRD exporting the same 100k static routes
#    with the same next hop and communities.
#  - 1 % churn on those 100k (1k withdrawn, 1k new): UPDATE messages and
#    routes sent per route of the delta, and the time until BIRD converged;
#    reference: the second BIRD reconfigured with the churned statics.
#  - a router sending the speaker a 262k-route table (which it ignores):
#    the speaker's heap without a cap and with the default max_prefixes;
#    reference: the memory BIRD's routes take for the same table (one run);
#  - scale: 1M RTBH /24s announced to one BIRD, then a 1 % change (10k
#    withdrawn, 10k new), next to BIRD -> BIRD with the same 1M statics:
#    load into GoBGP, Established until BIRD holds all, the change until
#    BIRD converged (goal <= 2 s), and the peak RSS of the process (goal
#    <= 1.5 GB); one run. SCALE=0 skips it.
# BGP_GOMEMLIMIT=1300MiB runs everything with that Go soft memory limit
# (see README: at 1M it keeps the peak RSS under the goal, at the cost of
# a collector that runs almost without pause).
# Prints markdown rows: | what | asfence | reference | ratio / notes |.
# Medians of BENCH_COUNT runs (default 3). The daemons run on 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-3}
if [ -n "${BGP_GOMEMLIMIT:-}" ]; then
  export GOMEMLIMIT=$BGP_GOMEMLIMIT
fi
out=$(go test -run '^$' -bench 'BenchmarkBGP(Preload|Churn)' -benchtime 1x -count "$count" -timeout 30m ./integration/ 2>&1) || {
  echo "$out" >&2
  exit 1
}
mem=$(go test -run '^$' -bench 'BenchmarkBGPReceivedTable' -benchtime 1x -count 1 -timeout 30m ./integration/ 2>&1) || {
  echo "$mem" >&2
  exit 1
}
# The scale run: 1M routes to one BIRD and a 1 % change (one run).
scale=""
if [ "${SCALE:-1}" != 0 ]; then
  scale=$(go test -run '^$' -bench 'BenchmarkBGPScale1M' -benchtime 1x -count 1 -timeout 60m ./integration/ 2>&1) || {
    echo "$scale" >&2
    exit 1
  }
  # The speaker's own CPU time at 100k and 1M, without a peer.
  spk=$(go test -run '^$' -bench 'BenchmarkSpeakerScale' -benchtime 1x -count 1 -timeout 30m ./bgp/ 2>&1) || {
    echo "$spk" >&2
    exit 1
  }
  scale="$scale
$spk"
fi
out="$out
$mem
$scale"
# median NAME METRIC: the median of the metric over the runs of one benchmark.
median() {
  echo "$out" | awk -v b="$1" -v m="$2" '
    $1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } print v[int((NR + 1) / 2)] }'
}
pa=$(median BenchmarkBGPPreload100k asfence-s)
pb=$(median BenchmarkBGPPreload100k bird-s)
pr=$(median BenchmarkBGPPreload100k ratio)
pl=$(median BenchmarkBGPPreload100k load-s)
pm=$(median BenchmarkBGPPreload100k peak-rss-MiB)
ca=$(median BenchmarkBGPChurn100k asfence-s)
cb=$(median BenchmarkBGPChurn100k bird-s)
cu=$(median BenchmarkBGPChurn100k updates/delta)
cr=$(median BenchmarkBGPChurn100k routes/delta)
fmt() { awk -v x="$1" 'BEGIN { if (x == "n/a") print x; else printf "%.2f", x }'; }
echo "| BGP: 100k RTBH /24, Established until BIRD holds all (median of $count) | $(fmt "$pa") s | $(fmt "$pb") s (BIRD -> BIRD) | $(fmt "$pr")x (goal <= 1.2x) |"
echo "| BGP: 1 % churn on 100k (1k withdrawn + 1k new), UPDATE messages per changed route | $(fmt "$cu") | - | goal <= 1.05x (one UPDATE per changed route; no resend) |"
echo "| BGP: 1 % churn on 100k, routes BIRD received per changed route | $(fmt "$cr") | - | goal <= 1.05x |"
echo "| BGP: 1 % churn on 100k, from Apply until BIRD converged | $(fmt "$ca") s | $(fmt "$cb") s (BIRD reconfigure -> BIRD) | includes diffing the 100k set against the RIB |"
mu0=$(median BenchmarkBGPReceivedTable uncapped-before-MiB)
mu1=$(median BenchmarkBGPReceivedTable uncapped-MiB)
mub=$(median BenchmarkBGPReceivedTable uncapped-B/route)
mc0=$(median BenchmarkBGPReceivedTable capped-before-MiB)
mc1=$(median BenchmarkBGPReceivedTable capped-MiB)
mb=$(median BenchmarkBGPReceivedTable bird-MiB)
echo "| BGP: a router sends the speaker a 262k-route table, speaker heap without a cap | $(fmt "$mu0") -> $(fmt "$mu1") MiB ($(fmt "$mub") B/route) | $(fmt "$mb") MiB (BIRD's routes for the same table) | GoBGP keeps every received route before any import policy |"
echo "| BGP: the same with the default max_prefixes (1000), highest heap while the router keeps reconnecting | $(fmt "$mc0") -> $(fmt "$mc1") MiB | - | the session is closed past 1000 routes per family |"
if [ -n "$scale" ]; then
  # 100k (medians above) and 1M (one run) side by side: linear growth is 10x.
  m() { median BenchmarkBGPScale1M "$1"; }
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == 0) print "n/a"; else printf "%.1fx", b / a }'; }
  sl=$(m load-s) sa=$(m announce-s) sc=$(m converged-s) sp=$(m apply-s) sm=$(m peak-rss-MiB)
  ba=$(m bird-announce-s) bc=$(m bird-converged-s) bm=$(m bird-rss-MiB)
  echo "| BGP scale: load the RTBH set into GoBGP before the neighbor is added (Start), 100k -> 1M | $(fmt "$pl") s -> $(fmt "$sl") s ($(ratio "$pl" "$sl")) | - | linear = 10x |"
  echo "| BGP scale: Established until BIRD holds all, 100k -> 1M | $(fmt "$pa") s -> $(fmt "$sa") s ($(ratio "$pa" "$sa")) | $(fmt "$pb") s -> $(fmt "$ba") s ($(ratio "$pb" "$ba"), BIRD -> BIRD) | |"
  echo "| BGP scale: 1 % change (1k / 10k withdrawn + as many new), Apply until BIRD converged, 100k -> 1M | $(fmt "$ca") s -> $(fmt "$sc") s ($(ratio "$ca" "$sc")); Apply itself $(fmt "$sp") s at 1M | $(fmt "$cb") s -> $(fmt "$bc") s (BIRD reconfigure -> BIRD) | goal at 1M <= 2 s |"
  k=$(median 'BenchmarkSpeakerScale/100k' load-cpu-s) K=$(median 'BenchmarkSpeakerScale/1000k' load-cpu-s)
  echo "| BGP scale: the speaker's Start, CPU time without a peer (bgp BenchmarkSpeakerScale), 100k -> 1M | $(fmt "$k") s -> $(fmt "$K") s ($(ratio "$k" "$K")) | - | linear = 10x |"
  k=$(median 'BenchmarkSpeakerScale/100k' apply-cpu-s) K=$(median 'BenchmarkSpeakerScale/1000k' apply-cpu-s)
  echo "| BGP scale: the speaker's 1 % Apply, CPU time without a peer, 100k -> 1M | $(fmt "$k") s -> $(fmt "$K") s ($(ratio "$k" "$K")) | - | linear = 10x |"
  k=$(median 'BenchmarkSpeakerScale/100k' heap-MiB) K=$(median 'BenchmarkSpeakerScale/1000k' heap-MiB)
  echo "| BGP scale: heap after a collection with the set applied, 100k -> 1M | $(fmt "$k") MiB -> $(fmt "$K") MiB ($(ratio "$k" "$K")) | - | GoBGP's RIB, the speaker's set, the Intent |"
  echo "| BGP scale: peak RSS of the process (speaker, GoBGP's RIB, the Intents), 100k -> 1M | $(fmt "$pm") MiB -> $(fmt "$sm") MiB ($(ratio "$pm" "$sm"))${GOMEMLIMIT:+, GOMEMLIMIT=$GOMEMLIMIT} | $(fmt "$bm") MiB (the sending BIRD with 1M statics) | goal at 1M <= 1.5 GB (1430 MiB) |"
fi
