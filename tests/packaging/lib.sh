# Shared settings and tool installers for the packaging tests. Sourced, not executed.
# shellcheck shell=bash disable=SC2034
#
# Every tool is installed by these functions, from the Go module proxy (helm, kubeconform,
# the prometheus-operator CRDs) or Debian's packages (lua5.1, promtool), into
# ${BBCONN_CACHE:-~/.cache/bbconn}/tools (Go tools) or the system (apt), and is reused once
# there. Each installer prints the tool's path on stdout; progress goes to stderr.

PKG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$PKG_DIR/../.." && pwd)
CACHE_ROOT=${BBCONN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bbconn}
TOOLS_DIR=$CACHE_ROOT/tools

# Pinned versions: the newest each source has (checked with `go list -m -versions`).
HELM_VERSION=v3.22.0                 # helm.sh/helm/v3
KUBECONFORM_VERSION=v0.8.0           # github.com/yannh/kubeconform
PROMETHEUS_OPERATOR_VERSION=v0.85.0  # github.com/prometheus-operator/prometheus-operator (its CRDs)

# Go builds share the machine with Rust builds: lowest priority, one package at a time.
GO_BUILD_P=${BBCONN_GO_BUILD_P:-1}

plog() { echo "packaging: $*" >&2; }

# use_project_kubectl: the kubectl built with the control plane (tests/controlplane/build.sh, the
# API server's version) first on PATH; a machine's own kubectl may be missing or of any version.
use_project_kubectl() {
    local bin
    bin=$(bash "$REPO_ROOT/tests/controlplane/build.sh") || { plog "building kubectl failed"; return 1; }
    PATH=$bin:$PATH
    export PATH
}

# refused WHAT EXPECTED COMMAND...: COMMAND fails, and says EXPECTED (the refusal meant, not any
# failure: a missing tool or a broken chart would fail too).
refused() {
    local what=$1 expected=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        echo "$what: accepted, but must be refused" >&2
        return 1
    fi
    if ! grep -qF -- "$expected" <<<"$out"; then
        echo "$what: refused, but not with \"$expected\":" >&2
        echo "$out" | tail -n 5 >&2
        return 1
    fi
}

go_install() { # go_install NAME VERSION PACKAGE@VERSION [LDFLAGS]
    local name=$1 version=$2 pkg=$3 ldflags=${4:-} dir=$TOOLS_DIR/$1-$2
    if [[ ! -x $dir/$name ]]; then
        command -v go >/dev/null || { plog "go not found in PATH (needed to install $name)"; return 1; }
        plog "installing $name $version from the Go module proxy into $dir"
        mkdir -p "$dir"
        GOBIN=$dir GOFLAGS=-buildvcs=false CGO_ENABLED=0 nice -n 19 \
            go install -p "$GO_BUILD_P" -trimpath -ldflags "-s -w $ldflags" "$pkg" >&2 ||
            { plog "installing $name $version failed"; return 1; }
    fi
    echo "$dir/$name"
}

# The ldflags of helm's own Makefile: its version, and the Kubernetes version it assumes when
# there is no cluster (`helm template`), which is its k8s.io/client-go's (v0.37 → 1.37).
HELM_K8S_MINOR=37
helm_bin() {
    go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" \
        "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
         -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
         -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
}

kubeconform_bin() {
    go_install kubeconform "$KUBECONFORM_VERSION" \
        "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" \
        "-X main.version=$KUBECONFORM_VERSION"
}

# The ServiceMonitor and PrometheusRule CRDs, from the prometheus-operator module's
# example/prometheus-operator-crd (downloaded through the Go module proxy).
prometheus_operator_crds() {
    local dir=$CACHE_ROOT/prometheus-operator-crds/$PROMETHEUS_OPERATOR_VERSION src
    if [[ ! -s $dir/monitoring.coreos.com_servicemonitors.yaml || ! -s $dir/monitoring.coreos.com_prometheusrules.yaml ]]; then
        plog "fetching the prometheus-operator $PROMETHEUS_OPERATOR_VERSION module for its CRDs"
        src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json \
            "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -d $src/example/prometheus-operator-crd ]] || { plog "no example/prometheus-operator-crd in $src"; return 1; }
        mkdir -p "$dir"
        cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
            "$src/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" "$dir/"
        chmod 644 "$dir"/*.yaml
    fi
    echo "$dir"
}

# apt_tool BINARY PACKAGE: the binary, from Debian's package when it is not there yet.
apt_tool() {
    local bin=$1 pkg=$2 sudo=
    if ! command -v "$bin" >/dev/null; then
        [[ $(id -u) == 0 ]] || sudo=sudo
        plog "installing Debian's $pkg (for $bin)"
        $sudo apt-get update -qq >&2 || { plog "apt-get update failed"; return 1; }
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >&2 ||
            { plog "installing Debian's $pkg failed"; return 1; }
    fi
    command -v "$bin" || { plog "$bin not found after installing $pkg"; return 1; }
}
lua_bin() { apt_tool lua5.1 lua5.1; }
promtool_bin() { apt_tool promtool prometheus; }

# A Python 3 with PyYAML: the one on PATH if it has it, else Debian's with python3-yaml.
pkg_python() {
    if python3 -c 'import yaml' 2>/dev/null; then
        command -v python3
        return
    fi
    if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
        apt_tool /usr/bin/python3 python3 >/dev/null
        local sudo=
        [[ $(id -u) == 0 ]] || sudo=sudo
        plog "installing Debian's python3-yaml"
        $sudo apt-get update -qq >&2 || { plog "apt-get update failed"; return 1; }
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-yaml >&2 ||
            { plog "installing Debian's python3-yaml failed"; return 1; }
    fi
    echo /usr/bin/python3
}

# The silent server for slow checks (fixtures/slow.yaml); prints its pid.
start_silent_server() { # start_silent_server LIFETIME_SECONDS
    local py
    py=$(command -v python3 || echo /usr/bin/python3)
    "$py" "$PKG_DIR/silent-server.py" --port 18449 --lifetime "${1:-300}" >/dev/null 2>&1 &
    echo $!
}

# render [HELM ARGS...]: the chart rendered as release bbconn in bbconn-system.
render() {
    "$(helm_bin)" template bbconn "$REPO_ROOT/charts/bbconn" --namespace bbconn-system "$@"
}
