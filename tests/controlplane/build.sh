#!/usr/bin/env bash
# Builds kube-apiserver, etcd (envtest-style local control plane) and a kubectl of
# the same version from the pinned Go modules in this directory into a
# per-version cache outside the repo: the scripts never use a kubectl the
# machine may or may not have, of whatever version (they put this directory
# first on PATH). Exits immediately when the binaries are already cached.
#
# Env:
#   BBCONN_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/bbconn)
#   BBCONN_BUILD_KCM=1    also build kube-controller-manager (optional)
#   BBCONN_BUILD_NODE=1   also build what a real node runs (tests/node/): kubelet, kube-proxy,
#                         kube-scheduler, kube-controller-manager
#   BBCONN_GO_BUILD_P=N   pass -p N to go build (e.g. 1 on a busy machine)
# Prints the binary directory on stdout; progress goes to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bins=(etcd kube-apiserver kubectl)
[[ ${BBCONN_BUILD_KCM:-0} == 1 || ${BBCONN_BUILD_NODE:-0} == 1 ]] && bins+=(kube-controller-manager)
[[ ${BBCONN_BUILD_NODE:-0} == 1 ]] && bins+=(kube-scheduler kube-proxy kubelet)

missing=()
for b in "${bins[@]}"; do
    [[ -x $BIN_DIR/$b ]] || missing+=("$b")
done
if ((${#missing[@]} == 0)); then
    log "binaries for $K8S_VERSION already in $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
fi

command -v go >/dev/null || { log "go toolchain not found in PATH"; exit 1; }
mkdir -p "$BIN_DIR"

# Drop temp binaries left by an interrupted earlier run (the suffix is the
# pid of the build.sh that wrote it; skip ones whose build is still running).
for f in "$BIN_DIR"/.*.tmp.*; do
    [[ -e $f ]] || continue
    kill -0 "${f##*.}" 2>/dev/null || rm -f "$f"
done

# -mod=mod: resolve from go.mod/go.sum via the module proxy (no vendor dir).
# GOPROXY is deliberately left as configured by the environment.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export CGO_ENABLED=0
go_build=(nice -n 19 go build -trimpath)
[[ -n ${BBCONN_GO_BUILD_P:-} ]] && go_build+=(-p "$BBCONN_GO_BUILD_P")

# Same version stamping and tags as Kubernetes' own release build
# (hack/lib/version.sh, hack/lib/golang.sh); -s -w strips debug info.
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done
k8s_tags=selinux,notest,grpcnotrace

# build NAME MODULE_DIR PACKAGE FLAGS...: builds to a temp name, then renames,
# so an interrupted build never leaves a truncated binary behind.
build() {
    local name=$1 dir=$2 pkg=$3 start tmp
    shift 3
    tmp=$BIN_DIR/.$name.tmp.$$
    trap 'rm -f "$tmp"' EXIT
    start=$SECONDS
    log "building $name ($pkg) ... (first build takes a while)"
    (cd "$dir" && "${go_build[@]}" "$@" -o "$tmp" "$pkg")
    mv -f "$tmp" "$BIN_DIR/$name"
    trap - EXIT
    log "built $name in $((SECONDS - start))s"
}

for b in "${missing[@]}"; do
    case $b in
    etcd)
        build etcd "$CP_DIR/etcd" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
        ;;
    kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | kubelet | kubectl)
        build "$b" "$CP_DIR" "k8s.io/kubernetes/cmd/$b" -tags "$k8s_tags" -ldflags "$k8s_ldflags"
        ;;
    esac
done

log "binaries for $K8S_VERSION (etcd $ETCD_VERSION) in $BIN_DIR"
echo "$BIN_DIR"
