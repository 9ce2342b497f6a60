#!/usr/bin/env bash
# make node-test: the node e2e test (tests/node/main.rs) on a node of its own: started here if
# none runs, and stopped (and the machine restored) afterwards, also when the test fails.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
started=0
if ! pid_alive inside >/dev/null; then
    started=1
    # shellcheck disable=SC2317 # called by the EXIT trap
    trap 'bash "$NODE_SCRIPTS/down.sh"' EXIT
    start=$SECONDS
    bash "$NODE_SCRIPTS/up.sh"
    log "node up in $((SECONDS - start)) s"
fi
"${CARGO:-cargo}" test --test node -- --ignored --nocapture --test-threads=1
((started)) || log "the node was running before: left running (make node-down stops it)"
