#!/usr/bin/env bash
# The node's processes, started by up.sh inside the network namespace bbconn-node and a mount
# namespace of their own (so containerd sees the kubelet's volume mounts, and nothing they mount
# outlives them). Each pid is recorded for down.sh. Arg: the directory of the Kubernetes binaries.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$1

# Paths written whatever the flags say, redirected into $STATE/host/. A folder made only to be
# mounted over is listed in $STATE/created-paths for down.sh to remove.
for p in "${HOST_PATHS[@]}"; do
    if [[ ! -e $p ]]; then
        mkdir -p "$p"
        echo "$p" >>"$STATE/created-paths"
    fi
    src=$STATE/host/${p//\//_}
    mkdir -p "$src"
    mount --bind "$src" "$p"
done

# run NAME CMD...: start CMD in the background, log to $STATE/logs/NAME.log, record its pid.
run() {
    local name=$1
    shift
    "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
    echo $! >"$STATE/pids/$name"
}

run etcd "$BIN/etcd" --name=node --data-dir="$STATE/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=node=http://127.0.0.1:2380 --unsafe-no-fsync

run kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --advertise-address="$NODE_IP" --secure-port=6443 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range="$SERVICE_CIDR"

until "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" get --raw /readyz >/dev/null 2>&1; do sleep 0.3; done

run kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --allocate-node-cidrs --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
    --service-cluster-ip-range="$SERVICE_CIDR"

run kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false

run containerd containerd --config "$STATE/containerd/config.toml"
until [[ -S $CONTAINERD_SOCK ]]; do sleep 0.2; done

# The kubelet's cgroupRoot must exist in every hierarchy; cpuset needs its cpus and mems set.
for h in /sys/fs/cgroup/*/; do
    [[ $h == */unified/ ]] && continue
    mkdir -p "$h$NODE_NAME"
    if [[ -e ${h}cpuset.cpus ]]; then
        cat "${h}cpuset.cpus" >"$h$NODE_NAME/cpuset.cpus"
        cat "${h}cpuset.mems" >"$h$NODE_NAME/cpuset.mems"
    fi
done

run kubelet "$BIN/kubelet" --config="$STATE/kubelet/config.yaml" \
    --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/pki" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"

run kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"

# Keep the mount namespace alive while any of them runs.
wait
