#!/usr/bin/env bash
# make node-up: a single-node Kubernetes (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, containerd, runc, the bridge CNI plugin) inside the network
# namespace bbconn-node, with bbconn's images loaded (make image). Facts behind the settings:
# ../shared/design/REAL-NODE.md. Reach it with
#   ip netns exec bbconn-node kubectl --kubeconfig target/node/kubeconfig get nodes
# Env: BBCONN_NODE_DIR (target/node), BBCONN_NODE_TIMEOUT (seconds, 120).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || { log "needs root (network namespaces, cgroups, containerd)"; exit 1; }
BIN=$(BBCONN_BUILD_NODE=1 "$REPO_ROOT/tests/controlplane/build.sh")
KUBECTL=$BIN/kubectl

if pid_alive inside >/dev/null && node_kubectl get --raw /readyz >/dev/null 2>&1; then
    log "already running; ip netns exec $NETNS kubectl --kubeconfig $KUBECONFIG_PATH ..."
    exit 0
fi
# A half-started or stale node: stop what is left, restore what it changed, start clean.
"$NODE_SCRIPTS/down.sh" >/dev/null 2>&1 || true

bash "$NODE_SCRIPTS/deps.sh"
images=$STATE/images
for i in bbconn bbconn-sim pause; do
    [[ -s $images/$i.tar ]] || { log "$images/$i.tar is missing: run \`make image\` first"; exit 1; }
done

mkdir -p "$STATE"/{pids,logs,pki,etcd,kubelet,containerd,cni/net.d,cni/ipam,pod-logs,host,runc}
chmod 700 "$STATE"

# --- kernel settings the kubelet changes: recorded once, restored by down.sh ------------------
if [[ ! -s $STATE/kernel-settings ]]; then
    for k in "${KERNEL_SETTINGS[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$STATE/kernel-settings.tmp"
    mv "$STATE/kernel-settings.tmp" "$STATE/kernel-settings"
fi

# --- the network namespace -----------------------------------------------------------------
log "network namespace $NETNS: node $NODE_IP, Pods $POD_CIDR, Services $SERVICE_CIDR"
ip netns add "$NETNS"
in_node ip link set lo up
# A veth pair with both ends here (this kernel has no dummy interfaces): the node's address sits
# on one end, and what is routed out of it reaches nothing.
in_node ip link add node0 type veth peer name node0-peer
in_node ip link set node0-peer up
in_node ip addr add "$NODE_IP/32" dev node0
in_node ip link set node0 up
# Service addresses are routed before kube-proxy's DNAT rewrites them; the dummy goes nowhere,
# so nothing in the namespace can reach beyond it.
in_node ip route add default dev node0
in_node sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

# --- certificates ------------------------------------------------------------------------------
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=bbconn-node-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
sign() { # NAME SUBJECT EXTENSIONS
    local name=$1 subj=$2 ext=$3
    ossl req -new -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
    printf '%s\n' "$ext" >"$PKI/$name.ext"
    ossl x509 -req -days 3650 -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
client=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
sign apiserver "/CN=kube-apiserver" $'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth'"
subjectAltName=IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=bbconn-node-admin" "$client"
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
sign kube-proxy "/CN=system:kube-proxy" "$client"
sign kube-scheduler "/CN=system:kube-scheduler" "$client"
sign kube-controller-manager "/CN=system:kube-controller-manager" "$client"
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

b64() { base64 -w0 <"$1"; }
kubeconfig() { # NAME -> $STATE/NAME.kubeconfig (admin: $KUBECONFIG_PATH)
    local name=$1 out=$STATE/$1.kubeconfig
    [[ $name == admin ]] && out=$KUBECONFIG_PATH
    cat >"$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $NODE_NAME
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(b64 "$PKI/$name.crt")
    client-key-data: $(b64 "$PKI/$name.key")
contexts:
- name: $NODE_NAME
  context: {cluster: $NODE_NAME, user: $name}
current-context: $NODE_NAME
KC
    chmod 600 "$out"
}
for c in admin kubelet kube-proxy kube-scheduler kube-controller-manager; do kubeconfig "$c"; done

# --- configuration files -------------------------------------------------------------------------
: >"$STATE/resolv.conf" # Pods get no resolver of the machine's (no cluster DNS here either)
cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:bbconn"
  # root here lacks CAP_SYS_RESOURCE: runc cannot set a negative oom_score_adj (REAL-NODE.md).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$STATE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
cat >"$STATE/cni/net.d/10-bbconn.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "bbconn",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
cat >"$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 only (the v2 mount holds only hugetlb): REAL-NODE.md.
failCgroupV1: false
cgroupDriver: cgroupfs
# Every Pod cgroup under one root, removed by down.sh.
cgroupRoot: /$NODE_NAME
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
volumePluginDir: $STATE/kubelet/volume-plugins
protectKernelDefaults: false
failSwapOn: false
# The images cannot be pulled again here: never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
YAML
cat >"$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero: leave the machine's conntrack table size and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML

# --- start everything in one mount namespace of its own ------------------------------------------
# nsenter: the node's network namespace only (unlike `ip netns exec`, /sys/fs/cgroup stays as it
# is); unshare: mounts the node makes (volumes, snapshots, Pod network namespaces) vanish with it.
log "starting etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy"
setsid nsenter --net="/run/netns/$NETNS" unshare --mount --propagation private -- \
    bash "$NODE_SCRIPTS/inside.sh" "$BIN" </dev/null >"$STATE/logs/inside.log" 2>&1 &
echo $! >"$STATE/pids/inside"

timeout=${BBCONN_NODE_TIMEOUT:-120}
deadline=$((SECONDS + timeout))
wait_for() { # WHAT CMD...
    local what=$1
    shift
    until "$@" >/dev/null 2>&1; do
        if ! pid_alive inside >/dev/null || ((SECONDS >= deadline)); then
            log "$what: not ready after $((SECONDS - start))s; see $STATE/logs/ (last lines of inside.log):"
            tail -n 20 "$STATE/logs/inside.log" >&2
            exit 1
        fi
        sleep 0.5
    done
}
start=$SECONDS
wait_for "kube-apiserver" node_kubectl get --raw /readyz
wait_for "containerd" test -S "$CONTAINERD_SOCK"
for i in pause bbconn bbconn-sim; do
    in_node ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$images/$i.tar" >/dev/null
done
wait_for "node $NODE_NAME Ready" node_kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
log "ready after $((SECONDS - start))s; images: $(in_node ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q | grep -E '^localhost/' | tr '\n' ' ')"
log "ip netns exec $NETNS $KUBECTL --kubeconfig $KUBECONFIG_PATH get pods -A"
