# Sourced by the benchmarks that serve the 2002 RIS table from the test IRRd
# server: checks the tools, makes $tmp (removed on exit, with the servers),
# builds asfence-irrd, generates the dataset into $tmp/bench.rpsl (its
# summary in $gen), and defines start_server.
# Needs: $BENCH_NAME (for messages), $BIN, $INPUT, and the tools to check as
# arguments.
for t in "$@"; do
  command -v "$t" >/dev/null || { echo "$BENCH_NAME: $t not found" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "$BENCH_NAME: $BIN missing: run make build first" >&2; exit 1; }
[ -r "$INPUT" ] || { echo "$BENCH_NAME: $INPUT not readable" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/asfence-irrd" ./cmd/asfence-irrd
"$tmp/asfence-irrd" -gen-bgpdump "$INPUT" -gen-out "$tmp/bench.rpsl" 2>"$tmp/gen.log"
gen=$(sed 's/^asfence-irrd: wrote [^:]*: //' "$tmp/gen.log")

# start_server NAME [FLAGS...]: serves the dataset on a free port; sets $addr.
start_server() {
  local name=$1; shift
  "$tmp/asfence-irrd" -listen 127.0.0.1:0 -addr-file "$tmp/$name.addr" "$@" "$tmp/bench.rpsl" 2>"$tmp/$name.log" &
  pids+=($!)
  local deadline=$((SECONDS + 60))
  until [ -s "$tmp/$name.addr" ]; do
    if ! kill -0 "${pids[-1]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "$BENCH_NAME: server $name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1
    fi
    sleep 0.05
  done
  addr=$(cat "$tmp/$name.addr")
}
