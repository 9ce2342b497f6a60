#!/usr/bin/env bash
# make packaging-test: every packaging check, each with the real tool (installed into
# ${BBCONN_CACHE:-~/.cache/bbconn} on first use). Needs Go, Python 3 and Debian's apt;
# starts (and stops) its own throwaway control plane for the server-side dry run.
#   BBCONN_SKIP_CARGO=1   the Dockerfile check does not run its cargo build
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=lib.sh
source tests/packaging/lib.sh
passed=0 failed=0 failures=() failed_logs=()
# Each step's output is kept, so that the end of the run (all a CI log's tail may show) repeats
# what a failed step said, not only its name.
logs=target/packaging/steps
rm -rf "$logs" && mkdir -p "$logs"
step() {
    local name=$1 start=$SECONDS rc
    shift
    echo "=== $name"
    "$@" 2>&1 | tee "$logs/$((passed + failed)).log"
    rc=${PIPESTATUS[0]}
    if ((rc == 0)); then
        passed=$((passed + 1))
        echo "--- ok: $name ($((SECONDS - start))s)"
    else
        failures+=("$name")
        failed_logs+=("$logs/$((passed + failed)).log")
        failed=$((failed + 1))
        echo "--- FAILED: $name ($((SECONDS - start))s)"
    fi
}
# Each tool is installed (or found), then run for its version: an installer that fails, or a
# tool that does not run, fails this step (an assignment keeps its command's exit status).
tools() {
    local helm kubeconform lua promtool crds v
    helm=$(helm_bin) && v=$("$helm" version --short) && echo "helm: $v" &&
        kubeconform=$(kubeconform_bin) && v=$("$kubeconform" -v) && echo "kubeconform: $v" &&
        lua=$(lua_bin) && v=$("$lua" -v 2>&1) && echo "lua: $v" &&
        promtool=$(promtool_bin) && v=$("$promtool" --version 2>&1) && echo "promtool: ${v%%$'\n'*}" &&
        crds=$(prometheus_operator_crds) &&
        [[ -s $crds/monitoring.coreos.com_servicemonitors.yaml && -s $crds/monitoring.coreos.com_prometheusrules.yaml ]] &&
        echo "prometheus-operator CRDs: $crds"
}
# The negative cases must be refused for their reason (refused, lib.sh), not by any failure.
helm_lint() {
    local helm
    helm=$(helm_bin) || return 1
    "$helm" lint --strict charts/bbconn &&
        "$helm" lint --strict charts/bbconn -f tests/packaging/values-full.yaml &&
        render > /dev/null && render -f tests/packaging/values-full.yaml > /dev/null &&
        refused "replicaCount=2 without leader election" \
            "leaderElection.enabled=false needs replicaCount: 1" \
            render --set replicaCount=2 --set leaderElection.enabled=false &&
        refused "an invalid namespace in watchNamespaces" \
            "at '/watchNamespaces/0': 'Not_A_Namespace' does not match pattern" \
            render --set 'watchNamespaces[0]=Not_A_Namespace' &&
        echo "helm template: default and full values render; invalid values are refused, each for its reason"
}
start=$SECONDS
step "tools" tools
step "helm lint and template" helm_lint
step "drift: deploy/, docs/, chart CRDs" tests/packaging/render.sh --check
step "kubeconform and server dry-run" tests/packaging/validate.sh
step "Argo CD health check (Lua 5.1)" tests/argocd/run.sh
step "alerts (promtool) and dashboard" tests/packaging/alerts/run.sh
step "Dockerfile" tests/packaging/dockerfile-target.sh
for i in "${!failures[@]}"; do
    echo "--- FAILED: ${failures[i]}, its last lines:"
    tail -n 25 "${failed_logs[i]}" | sed 's/^/    /'
done
echo "packaging: $((SECONDS - start))s${failures[*]:+; failed: ${failures[*]}}"
echo "packaging: $passed passed, $failed failed"
((failed == 0))
