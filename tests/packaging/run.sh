#!/usr/bin/env bash
# make packaging-test: every packaging check, each with the real tool (installed into
# ${BBCONN_CACHE:-~/.cache/bbconn} on first use). Needs Go, Python 3 and Debian's apt;
# starts (and stops) its own throwaway control plane for the server-side dry run.
#   BBCONN_SKIP_CARGO=1   the Dockerfile check does not run its cargo build
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=lib.sh
source tests/packaging/lib.sh
passed=0 failed=0 failures=()
step() {
    local name=$1 start=$SECONDS
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "--- ok: $name ($((SECONDS - start))s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "--- FAILED: $name ($((SECONDS - start))s)"
    fi
}
tools() {
    echo "helm: $("$(helm_bin)" version --short)"
    echo "kubeconform: $("$(kubeconform_bin)" -v)"
    echo "lua: $("$(lua_bin)" -v 2>&1)"
    echo "promtool: $("$(promtool_bin)" --version 2>&1 | head -1)"
    echo "prometheus-operator CRDs: $(prometheus_operator_crds)"
}
helm_lint() {
    local helm
    helm=$(helm_bin)
    "$helm" lint --strict charts/bbconn &&
        "$helm" lint --strict charts/bbconn -f tests/packaging/values-full.yaml &&
        render > /dev/null && render -f tests/packaging/values-full.yaml > /dev/null &&
        ! render --set replicaCount=2 --set leaderElection.enabled=false > /dev/null 2>&1 &&
        ! render --set watchNamespaces[0]=Not_A_Namespace > /dev/null 2>&1 &&
        echo "helm template: default and full values render; invalid values are refused"
}
start=$SECONDS
step "tools" tools
step "helm lint and template" helm_lint
step "drift: deploy/, docs/, chart CRDs" tests/packaging/render.sh --check
step "kubeconform and server dry-run" tests/packaging/validate.sh
step "Argo CD health check (Lua 5.1)" tests/argocd/run.sh
step "alerts (promtool) and dashboard" tests/packaging/alerts/run.sh
step "Dockerfile" tests/packaging/dockerfile-target.sh
echo "packaging: $((SECONDS - start))s${failures[*]:+; failed: ${failures[*]}}"
echo "packaging: $passed passed, $failed failed"
((failed == 0))
