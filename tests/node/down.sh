#!/usr/bin/env bash
# make node-down: stop the node up.sh started, by the pids it recorded, and undo what it
# changed on the machine: kernel settings, Pod cgroups, the network namespace, folders made to
# mount over. Safe to run twice, and after a failed start. Keeps $STATE/images/.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stop NAME...: TERM each recorded process, then KILL what is left after 10 s.
stop() {
    local name pid pids=()
    for name in "$@"; do
        if pid=$(pid_alive "$name"); then
            kill "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$STATE/pids/$name"
    done
    for _ in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

# The kubelet first, so that it starts nothing new; then every process in a Pod cgroup and the
# containerd shims of this node (they outlive containerd by design), then the rest.
stop kubelet kube-proxy
cgroups=(/sys/fs/cgroup/*/"$NODE_NAME")
for _ in 1 2 3; do
    for g in "${cgroups[@]}"; do
        [[ -d $g ]] || continue
        find "$g" -name cgroup.procs -print0 2>/dev/null | xargs -0 -r cat 2>/dev/null |
            xargs -r kill -9 2>/dev/null || true
    done
    sleep 0.2
done
pkill -9 -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
stop containerd kube-scheduler kube-controller-manager kube-apiserver etcd inside

for g in "${cgroups[@]}"; do
    if [[ -d $g ]]; then find "$g" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done
if ip netns list | grep -qw "$NETNS"; then ip netns del "$NETNS"; fi

if [[ -s $STATE/kernel-settings ]]; then
    while IFS= read -r kv; do sysctl -qw "$kv" || log "could not restore $kv"; done <"$STATE/kernel-settings"
    rm -f "$STATE/kernel-settings"
fi
if [[ -s $STATE/created-paths ]]; then
    sort -r "$STATE/created-paths" | while IFS= read -r p; do rmdir "$p" 2>/dev/null || true; done
    rm -f "$STATE/created-paths"
fi
# What is left of the node (snapshots, etcd, logs) goes; the images stay for the next start.
if [[ -d $STATE ]]; then
    find "$STATE" -mindepth 1 -maxdepth 1 ! -name images ! -name logs -exec rm -rf {} +
fi
log "stopped"
