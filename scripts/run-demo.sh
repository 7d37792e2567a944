#!/usr/bin/env bash
# `make run`: the asfence daemon on the embedded default data (ByteDance/TikTok
# and Tencent/WeChat, offline snapshot): the BGP speaker listens on a high
# loopback port, the API on loopback, vendor configs go to ./out/.
#
# On a terminal the daemon keeps running until Ctrl-C (SIGHUP reloads the
# config). Elsewhere (CI) it shows what it did and stops.
# Overrides: OUT=dir API=host:port BGP_PORT=n KEEP_RUNNING=0|1
set -euo pipefail
bin=${1:-bin/asfence}
out=${OUT:-out}
api=${API:-127.0.0.1:9179}
bgp_port=${BGP_PORT:-11179}
keep=${KEEP_RUNNING:-}
if [ -z "$keep" ]; then
	if [ -t 0 ] && [ -t 1 ]; then keep=1; else keep=0; fi
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
cfg=$out/demo.yaml
vendors=$("$bin" vendors | paste -sd, - | sed 's/,/, /g')
cat >"$cfg" <<EOF
# Written by make run (scripts/run-demo.sh). Every key: examples/asfence.yaml.
schedule: "@every 6h"
jitter: 0s
state_dir: $out/state
output_dir: $out
outputs:
  vendors: [$vendors]
api:
  listen: $api
log:
  level: info
  format: text
bgp:
  asn: 65001
  router_id: 127.0.0.1
  listen:
    address: 127.0.0.1
    port: $bgp_port
  graceful_restart:
    enabled: true
    restart_time: 120
  neighbors:
    # Point a router (or BIRD, see below) at 127.0.0.1 port $bgp_port from 127.0.0.2.
    - address: 127.0.0.2
      asn: 65001
      passive: true
      families: [ipv4, ipv6]
      announce: [blackhole, flowspec]
      description: demo peer
EOF
"$bin" check-config "$cfg"

log=$out/asfence.log
"$bin" run --config "$cfg" --offline 2>"$log" &
pid=$!
stop() {
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
trap stop EXIT INT TERM

# Wait for the first run to finish (the API answers and a run is recorded).
for _ in $(seq 1 300); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "asfence exited; its log ($log):" >&2
		cat "$log" >&2
		exit 1
	fi
	if "$bin" history --config "$cfg" --limit 1 --format json 2>/dev/null | grep -q '"outcome": "\(applied\|unchanged\|held\|failed\)"'; then
		break
	fi
	sleep 0.2
done

echo
"$bin" history --config "$cfg" --limit 5
echo
"$bin" peers --config "$cfg"
cat <<EOF

asfence is running (pid $pid), on the embedded snapshot:
  API          http://$api/api/v1/status   (also /metrics, /api/v1/runs, /api/v1/prefixes?target=tencent)
  history      $bin history --config $cfg
  one run      $bin show 1 --config $cfg
  trigger      curl -X POST http://$api/api/v1/runs
  configs      $out/asfence-*  (previous versions in $out/previous/)
  log          $log
  state        $out/state
  BGP          127.0.0.1:$bgp_port, AS65001, RTBH + FlowSpec for a peer at 127.0.0.2; with BIRD:
                 protocol bgp asfence { local 127.0.0.2 as 65001; neighbor 127.0.0.1 port $bgp_port as 65001;
                   ipv4 { import all; export none; }; ipv6 { import all; export none; }; }
EOF
ls "$out" | sed 's/^/  /'

if [ "$keep" = 1 ]; then
	echo
	echo "Ctrl-C stops it."
	wait "$pid"
else
	echo
	echo "(not on a terminal: stopping the demo daemon; KEEP_RUNNING=1 keeps it running)"
fi
