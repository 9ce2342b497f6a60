#!/usr/bin/env bash
# Flux / kstatus: brings the demo up if it is not running (examples/demo-env.sh), adds the
# packaging fixtures (a rate-limited token; a server that never answers), shows that
# `kubectl wait --for=condition=Ready` works as the README says, then runs the Go test
# (tests/packaging/kstatus/, sigs.k8s.io/cli-utils kstatus) against the live objects, and
# stops the demo again if it started it (BBCONN_KEEP_DEMO=1 keeps it).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
use_project_kubectl
export KUBECONFIG=$REPO_ROOT/target/local-cluster/kubeconfig
command -v go >/dev/null || { plog "go not found in PATH"; exit 1; }

started=0
[[ -f target/demo/started ]] || started=1
bash "$REPO_ROOT/examples/demo-env.sh" up
silent=$(start_silent_server 300)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    kill "$silent" 2>/dev/null || true
    kubectl delete bbconn -n demo packaging-rotate --ignore-not-found >/dev/null 2>&1 || true
    kubectl delete secret -n demo packaging-rotate --ignore-not-found >/dev/null 2>&1 || true
    if ((started)) && [[ ${BBCONN_KEEP_DEMO:-0} != 1 ]]; then bash "$REPO_ROOT/examples/demo-env.sh" down; fi
}
trap cleanup EXIT

kubectl apply -f tests/packaging/fixtures/ratelimited.yaml -f tests/packaging/fixtures/slow.yaml >/dev/null
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=RateLimited \
    bbconn/packaging-ratelimited -n demo --timeout=30s >/dev/null
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=ConnectionTimedOut \
    bbconn/packaging-slow -n demo --timeout=30s >/dev/null

echo "kstatus: kubectl wait, as in the README"
kubectl wait --for=condition=Ready bbconn/ox-scanner -n demo --timeout=30s
# A revoked token: waiting fails (times out) until the Secret is rotated, then succeeds.
kubectl create secret generic packaging-rotate -n demo --from-literal=token=BBDC-FAKE-demo-alice-revoked \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: { name: packaging-rotate, namespace: demo }
spec:
  flavor: DataCenter
  url: https://bitbucket.example.com
  auth: { method: AccessToken, secretRef: { name: packaging-rotate } }
  tls: { caBundleRef: { kind: ConfigMap, name: bitbucket-ca } }
YAML
kubectl wait --for=condition=Stalled bbconn/packaging-rotate -n demo --timeout=30s
refused "kubectl wait --for=condition=Ready on a revoked token" "timed out waiting for the condition" \
    kubectl wait --for=condition=Ready bbconn/packaging-rotate -n demo --timeout=3s
echo "  (kubectl wait --for=condition=Ready timed out on the revoked token, as it should)"
kubectl create secret generic packaging-rotate -n demo --from-literal=token=BBDC-FAKE-demo-alice-admin \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
start=$(date +%s%N)
kubectl wait --for=condition=Ready bbconn/packaging-rotate -n demo --timeout=30s
echo "  (Ready $(( ($(date +%s%N) - start) / 1000000 )) ms after the Secret was rotated)"

echo "kstatus: go test (sigs.k8s.io/cli-utils $(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' tests/packaging/kstatus/go.mod))"
cd tests/packaging/kstatus
nice -n 19 go test -p "$GO_BUILD_P" -count=1 -v ./... 2>&1 | sed 's/^/  /'
exit "${PIPESTATUS[0]}"
