#!/usr/bin/env bash
# make demo: a local control plane, the Bitbucket simulator, the operator, examples/ applied,
# and the status shown. `make demo-down` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
demo=target/demo
mkdir -p "$demo"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Starting the local control plane (kube-apiserver and etcd built from Go modules; the first build takes minutes)"
bash tests/controlplane/up.sh
export KUBECONFIG=$PWD/target/local-cluster/kubeconfig

stop_pid() { [ -f "$1" ] && kill "$(cat "$1")" 2>/dev/null; rm -f "$1"; }
stop_pid "$demo/sim.pid"; stop_pid "$demo/operator.pid"; sleep 0.5

say "Starting the Bitbucket simulator (Cloud and Data Center on 127.0.0.1:18443-18447, a CONNECT proxy on :13128)"
rm -f "$demo/sim.json"
"$bin/bbconn-sim" --fixture sim/fixtures/demo.yaml --pki-dir "$demo/pki" > "$demo/sim.json" 2> "$demo/sim.log" &
echo $! > "$demo/sim.pid"
for _ in $(seq 50); do [ -s "$demo/sim.json" ] && break; sleep 0.1; done
[ -s "$demo/sim.json" ] || { echo "the simulator did not start:"; cat "$demo/sim.log"; exit 1; }

say "Installing the CRD and applying examples/"
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/bitbucketconnections.bbconn.dev --timeout=30s >/dev/null
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create configmap bitbucket-ca -n demo --from-file=ca.crt="$demo/pki/ca.crt" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f examples/

say "Starting the operator (bbconn run), logs in $demo/operator.log, metrics on http://127.0.0.1:18080/metrics"
source examples/demo-network.sh
"$bin/bbconn" run --metrics-addr 127.0.0.1:18080 --lease-namespace default "${BBCONN_DEMO_FLAGS[@]}" > "$demo/operator.log" 2>&1 &
echo $! > "$demo/operator.pid"

total=$(kubectl get bbconn -n demo --no-headers | wc -l)
for _ in $(seq 100); do
  done_count=$(kubectl get bbconn -n demo -o go-template='{{range .items}}{{$n := .metadata.name}}{{range .status.problems}}{{printf "%-28s %-8s %s/%s\n    remedy: %s\n" $n .severity .check .cause .remedy}}{{end}}{{end}}' > "$demo/problems.txt"
cat "$demo/problems.txt"

cat <<MSG

Look around:
  export KUBECONFIG=$KUBECONFIG
  kubectl describe bbconn -n demo oci-revoked-token        # conditions, problems, events
  kubectl get events -n demo --field-selector reason=TokenRevoked
  curl -s 127.0.0.1:18080/metrics | grep bbconn_connection_ready

Fix one: rotate the revoked token's Secret, and watch it turn Ready within a second:
  kubectl create secret generic oci-revoked-token -n demo --from-literal=token=BBDC-FAKE-demo-alice-admin \\
    --dry-run=client -o yaml | kubectl apply -f -
  kubectl wait --for=condition=Ready bbconn/oci-revoked-token -n demo --timeout=30s

Stop everything:  make demo-down
MSG
