#!/usr/bin/env bash
# `make bench`: every benchmark next to its reference tool, measured in the same run.
# Each scripts/bench-<area>.sh prints markdown table rows; this prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "| what | asfence | reference | ratio / notes |"
echo "|---|---|---|---|"
status=0
for s in scripts/bench-*.sh; do
  [ -e "$s" ] || continue
  if ! bash "$s"; then
    echo "| $(basename "$s" .sh) | failed | | see stderr |"
    status=1
  fi
done
exit $status
