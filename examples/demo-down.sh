#!/usr/bin/env bash
# make demo-down: stops the operator, the simulator and the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/demo-env.sh down-all
