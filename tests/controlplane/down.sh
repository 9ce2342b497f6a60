#!/usr/bin/env bash
# Stops the local control plane started by up.sh (SIGTERM, then SIGKILL after
# a bounded wait) and deletes its state directory (etcd data, certs, logs).
#
# Env: BBCONN_CLUSTER_DIR / ports as in lib.sh, BBCONN_STOP_TIMEOUT (s, 10).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout=${BBCONN_STOP_TIMEOUT:-10}

# stop NAME: only signals the pid we recorded, and only if it is still NAME.
stop() {
    local name=$1 pid deadline
    pid=$(pid_of "$name") || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + timeout))
    while pid_of "$name" >/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name did not exit after ${timeout}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

# apiserver first, so it does not spam errors about a vanished etcd.
stop kube-apiserver
stop etcd

# Refuse to rm anything that is not a dedicated directory.
case $STATE_DIR in
"" | / | "$REPO_ROOT" | "$REPO_ROOT/target" | "$HOME") log "refusing to delete $STATE_DIR"; exit 1 ;;
esac
if [[ -d $STATE_DIR ]]; then
    rm -rf "$STATE_DIR"
    log "removed $STATE_DIR"
fi
