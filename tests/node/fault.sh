#!/usr/bin/env bash
# Faults for the node e2e test: kill one of the node's processes and start it again, with the
# same command line, in the node's network and mount namespaces.
#   fault.sh kill NAME     SIGKILL (kubelet, containerd, kube-proxy, ...); keeps its command line
#   fault.sh start NAME    start it again as it was
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
name=${2:?usage: $0 kill|start NAME}
case ${1:-} in
kill)
    pid=$(pid_alive "$name") || { log "$name is not running"; exit 1; }
    tr '\0' '\n' <"/proc/$pid/cmdline" >"$STATE/pids/$name.cmdline"
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    log "killed $name (pid $pid)"
    ;;
start)
    inside=$(pid_alive inside) || { log "the node is not running"; exit 1; }
    mapfile -t cmd <"$STATE/pids/$name.cmdline"
    # bash records its own pid, then becomes nsenter, which becomes the process itself.
    # shellcheck disable=SC2016 # expanded by that bash
    setsid bash -c 'echo $$ >"$1"; shift; exec nsenter -t "$1" -m -n -- "${@:2}"' _ \
        "$STATE/pids/$name" "$inside" "${cmd[@]}" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
    for _ in $(seq 50); do pid_alive "$name" >/dev/null && break; sleep 0.1; done
    log "started $name again (pid $(pid_alive "$name"))"
    ;;
*) echo "usage: $0 kill|start NAME" >&2; exit 2 ;;
esac
