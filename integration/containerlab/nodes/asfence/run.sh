#!/bin/sh
# Keeps asfence running in its container, as systemd's Restart= does on a
# host (examples/asfence.service): after a crash it starts again from its
# state directory, and with BGP graceful restart the routers keep every
# route meanwhile. SIGTERM (docker stop) stops it cleanly.
#   run.sh ARGS...   runs "asfence run ARGS..."
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
while :; do
  asfence run "$@" &
  pid=$!
  wait "$pid"
  echo "asfence exited with status $?; starting it again in 1 s" >&2
  sleep 1
done
