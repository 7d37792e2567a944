#!/usr/bin/env bash
# `make run`: the main job on the embedded default data.
set -euo pipefail
bin=${1:-bin/asfence}
"$bin" resolve --offline
