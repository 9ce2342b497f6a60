# Shared settings for build.sh / up.sh / down.sh. Sourced, not executed.
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

CP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$CP_DIR/../.." && pwd)

# Versions come from the pinned go.mod files, so there is a single source of
# truth (read with awk: no Go invocation needed, keeps the cached path instant).
K8S_VERSION=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$CP_DIR/go.mod")
ETCD_VERSION=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$CP_DIR/etcd/go.mod")
if [[ -z $K8S_VERSION || -z $ETCD_VERSION ]]; then
    echo "controlplane: cannot read pinned versions from $CP_DIR/go.mod and etcd/go.mod" >&2
    exit 1
fi

# Binaries live outside the repo, keyed by the Kubernetes version (which also
# fixes the etcd version), so `cargo clean` / git clean never throw them away.
CACHE_ROOT=${BBCONN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bbconn}
BIN_DIR=$CACHE_ROOT/controlplane/$K8S_VERSION

# Runtime state. Override the dir and ports to run a second, independent
# cluster (e.g. BBCONN_CLUSTER_DIR=target/cluster2 BBCONN_ETCD_PORT=12379 ...).
STATE_DIR=${BBCONN_CLUSTER_DIR:-$REPO_ROOT/target/local-cluster}
case $STATE_DIR in /*) ;; *) STATE_DIR=$REPO_ROOT/$STATE_DIR ;; esac
ETCD_PORT=${BBCONN_ETCD_PORT:-2379}
ETCD_PEER_PORT=${BBCONN_ETCD_PEER_PORT:-2380}
APISERVER_PORT=${BBCONN_APISERVER_PORT:-6443}
KUBECONFIG_PATH=$STATE_DIR/kubeconfig

log() { echo "controlplane: $*" >&2; }

# pid_of NAME: prints the pid from $STATE_DIR/NAME.pid if that process is
# alive and really is NAME (guards against a recycled pid).
pid_of() {
    local name=$1 pid comm
    [[ -r $STATE_DIR/$name.pid ]] || return 1
    pid=$(<"$STATE_DIR/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    echo "$pid"
}

# apiserver_ready: true when /readyz answers "ok" over mTLS with the admin cert.
apiserver_ready() {
    [[ -r $STATE_DIR/pki/ca.crt ]] || return 1
    [[ $(curl -fsS --max-time 3 \
        --cacert "$STATE_DIR/pki/ca.crt" \
        --cert "$STATE_DIR/pki/admin.crt" --key "$STATE_DIR/pki/admin.key" \
        "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null) == ok ]]
}
