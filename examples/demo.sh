#!/usr/bin/env bash
# make demo: a local control plane, the Bitbucket simulator, the operator, examples/ applied,
# and the status shown. `make demo-down` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=target/demo
mkdir -p "$demo"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Starting the local control plane (first time: kube-apiserver and etcd are built from Go modules),"
say "the Bitbucket simulator (127.0.0.1:18443-18447, CONNECT proxies on :13128 and :13129) and bbconn run"
bash examples/demo-env.sh up
export KUBECONFIG=$PWD/target/local-cluster/kubeconfig
kubectl_dir=$(bash tests/controlplane/build.sh 2>/dev/null)
PATH=$kubectl_dir:$PATH # the kubectl demo-env.sh used, of the API server's version

say "kubectl get bbconn -A"
kubectl get bbconn -A
say "What is wrong, and what to do (status.problems)"
kubectl get bbconn -n demo -o go-template='{{range .items}}{{$n := .metadata.name}}{{range .status.problems}}{{printf "%-28s %-8s %s/%s\n    remedy: %s\n" $n .severity .check .cause .remedy}}{{end}}{{end}}' > "$demo/problems.txt"
cat "$demo/problems.txt"
say "Discovered from Argo CD and Flux (examples/discovery/): kubectl get bbconn -A -l bbconn.dev/discovered-from"
kubectl get bbconn -A -l bbconn.dev/discovered-from

cat <<MSG

Look around:
  export KUBECONFIG=$KUBECONFIG
  export PATH=$kubectl_dir:\$PATH   # a kubectl of the API server's version, if you have none
  kubectl describe bbconn -n demo oci-revoked-token        # conditions, problems, events
  kubectl get events -n demo --field-selector reason=TokenRevoked
  curl -s 127.0.0.1:18080/metrics | grep bbconn_connection_ready

Fix one: rotate the revoked token's Secret, and watch it turn Ready within a second:
  kubectl create secret generic oci-revoked-token -n demo --from-literal=token=BBDC-FAKE-demo-alice-admin \\
    --dry-run=client -o yaml | kubectl apply -f -
  kubectl wait --for=condition=Ready bbconn/oci-revoked-token -n demo --timeout=30s

Stop everything:  make demo-down
MSG
