#!/usr/bin/env bash
# make demo-down: stops the operator, the simulator and the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in target/demo/operator.pid target/demo/sim.pid; do
  [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
  rm -f "$p"
done
bash tests/controlplane/down.sh
