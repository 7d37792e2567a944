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
	if [ -n "${bird_pid:-}" ]; then
		kill -TERM "$bird_pid" 2>/dev/null || true
		wait "$bird_pid" 2>/dev/null || true
		rm -rf "$bdir"
	fi
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

# A router to show the routes arriving: BIRD as the iBGP peer at 127.0.0.2
# (when it is installed; make test installs it), with the discard next hops
# as static blackholes as an edge router would have them.
bird_pid=""
if command -v bird >/dev/null 2>&1 && command -v birdc >/dev/null 2>&1; then
	bdir=$(mktemp -d /tmp/asfence-demo-bird.XXXXXX) # short: BIRD's socket path is limited
	cat >"$bdir/bird.conf" <<EOF
router id 127.0.0.2;
protocol device { }
protocol static discard4 { ipv4; route 192.0.2.1/32 blackhole; }
protocol static discard6 { ipv6; route 100::1/128 blackhole; }
flow4 table flowtab4;
flow6 table flowtab6;
protocol bgp asfence {
  local 127.0.0.2 as 65001;
  neighbor 127.0.0.1 port $bgp_port as 65001;
  multihop;
  ipv4 { import where (65535, 666) ~ bgp_community; export none; };
  ipv6 { import where (65535, 666) ~ bgp_community; export none; };
  flow4 { table flowtab4; import all; export none; };
  flow6 { table flowtab6; import all; export none; };
}
EOF
	bird -f -c "$bdir/bird.conf" -s "$bdir/bird.ctl" >"$out/bird.log" 2>&1 &
	bird_pid=$!
	for _ in $(seq 1 150); do
		n=$(birdc -s "$bdir/bird.ctl" show route table flowtab4 count 2>/dev/null | sed -n 's/^\([0-9]*\) of .*/\1/p' || true)
		[ -n "$n" ] && [ "$n" -gt 0 ] && break
		sleep 0.2
	done
fi

echo
"$bin" history --config "$cfg" --limit 5
echo
"$bin" peers --config "$cfg"
if [ -n "$bird_pid" ]; then
	echo
	echo "BIRD at 127.0.0.2 received (birdc -s $bdir/bird.ctl):"
	for t in master4 master6 flowtab4 flowtab6; do
		printf '  %-9s %s\n' "$t" "$(birdc -s "$bdir/bird.ctl" show route table $t protocol asfence count | sed -n 's/^\([0-9]* of [0-9]* routes\).*/\1/p')"
	done
	echo "  e.g.:"
	birdc -s "$bdir/bird.ctl" show route table master4 protocol asfence all | sed -n '2,9p' | sed 's/^/    /'
fi
cat <<EOF

asfence is running (pid $pid), on the embedded snapshot:
  console      http://$api/   (the review console: open it in a browser)
  API          http://$api/api/v1/status   (also /metrics, /api/v1/runs, /api/v1/prefixes?target=tencent)
  history      $bin history --config $cfg
  one run      $bin show 1 --config $cfg
  trigger      $bin trigger --config $cfg --wait
  configs      $out/asfence-*  (previous versions in $out/previous/)
  log          $log
  state        $out/state
  BGP          127.0.0.1:$bgp_port, AS65001, RTBH + FlowSpec for an iBGP peer at 127.0.0.2
               ${bird_pid:+(the demo BIRD: $bdir/bird.conf, birdc -s $bdir/bird.ctl)}
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
