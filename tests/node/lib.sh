# Shared settings for the real node (tests/node/up.sh, down.sh, inside.sh). Sourced.
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

NODE_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$NODE_SCRIPTS/../.." && pwd)

# Everything lives in this network namespace: the node's address, the bridge, the Pod and
# Service ranges, the API server, iptables rules. None of these addresses exists on the
# machine's own network (REAL-NODE.md, "Keep the machine clean").
NETNS=${BBCONN_NODE_NETNS:-bbconn-node}
NODE_NAME=bbconn-node
NODE_IP=10.250.255.1
POD_CIDR=10.250.0.0/24
CLUSTER_CIDR=10.250.0.0/16
SERVICE_CIDR=10.251.0.0/24
# The first address of SERVICE_CIDR: the `kubernetes` Service.
KUBERNETES_SVC_IP=10.251.0.1

STATE=${BBCONN_NODE_DIR:-$REPO_ROOT/target/node}
case $STATE in /*) ;; *) STATE=$REPO_ROOT/$STATE ;; esac
PKI=$STATE/pki
KUBECONFIG_PATH=$STATE/kubeconfig
CONTAINERD_SOCK=$STATE/containerd/containerd.sock

# Non-namespaced kernel settings the kubelet changes (pkg/kubelet/cm: setupKernelTunables with
# protectKernelDefaults false); recorded before it starts, restored when the node stops.
KERNEL_SETTINGS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# Paths the kubelet, containerd and the CNI plugins use whatever their flags say: bind-mounted
# from $STATE/host/ inside the node's own mount namespace, so nothing is written there on the
# machine (a folder created only to mount over is removed again by down.sh).
HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /opt/cni /etc/cni)

# What the node needs from Debian (REAL-NODE.md, "Parts").
NODE_PACKAGES=(containerd runc containernetworking-plugins buildah iptables nftables conntrack)

log() { echo "node: $*" >&2; }

# pid_alive NAME: the pid recorded in $STATE/pids/NAME if that process still runs and is this
# node's (its command line names the node's folder or scripts: a recycled pid is not).
pid_alive() {
    local f=$STATE/pids/$1 pid
    [[ -r $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$STATE" -e "$NODE_SCRIPTS" || return 1
    echo "$pid"
}

# in_node CMD...: run CMD inside the node's network namespace.
in_node() { ip netns exec "$NETNS" "$@"; }

node_kubectl() { in_node "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
