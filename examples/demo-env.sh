#!/usr/bin/env bash
# The demo environment: the local control plane, the Bitbucket simulator, `bbconn run` and
# examples/ applied, from the binaries already in target/release (this script never builds
# them). `make demo` and the packaging tests (which read real objects from it) both use it.
#
#   examples/demo-env.sh up          # reuse a running demo, or start one; waits until every
#                                    # connection in namespace demo has a Ready condition
#   examples/demo-env.sh down        # stop what `up` started (a demo it reused is left running)
#   examples/demo-env.sh down-all    # stop it whoever started it (make demo-down)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BBCONN_BIN_DIR:-target/release}
demo=target/demo
mkdir -p "$demo"
export KUBECONFIG=$PWD/target/local-cluster/kubeconfig
# The kubectl built with the control plane (its version): the machine may have none.
PATH=$(bash tests/controlplane/build.sh):$PATH
log() { echo "demo: $*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_checked() {
  local total pending
  for _ in $(seq 120); do
    total=$(kubectl get bbconn -n demo --no-headers 2>/dev/null | wc -l)
    pending=$(kubectl get bbconn -n demo -o go-template='{{range .items}}{{if not .status}}x{{"\n"}}{{else}}{{if not .status.conditions}}x{{"\n"}}{{end}}{{end}}{{end}}' | grep -c x || true)
    if [ "$total" -gt 0 ] && [ "$pending" -eq 0 ]; then
      log "$total connections checked"
      return 0
    fi
    sleep 0.5
  done
  log "connections still unchecked after 60s; last lines of $demo/operator.log:"
  tail -n 20 "$demo/operator.log" >&2
  return 1
}

up() {
  if alive "$demo/operator.pid" && alive "$demo/sim.pid" && kubectl get --raw /readyz >/dev/null 2>&1; then
    log "reusing the running demo"
    wait_checked
    return
  fi
  for b in bbconn bbconn-sim; do
    [ -x "$bin/$b" ] || { log "$bin/$b is missing: run \`make build\` first"; exit 1; }
  done
  : > "$demo/started"
  bash tests/controlplane/up.sh
  for p in "$demo/sim.pid" "$demo/operator.pid"; do
    if alive "$p"; then kill "$(cat "$p")"; fi
    rm -f "$p"
  done
  rm -f "$demo/sim.json"
  "$bin/bbconn-sim" --fixture sim/fixtures/demo.yaml --pki-dir "$demo/pki" > "$demo/sim.json" 2> "$demo/sim.log" &
  echo $! > "$demo/sim.pid"
  for _ in $(seq 50); do [ -s "$demo/sim.json" ] && break; sleep 0.1; done
  [ -s "$demo/sim.json" ] || { log "the simulator did not start:"; cat "$demo/sim.log" >&2; exit 1; }
  kubectl apply -f crds/ >/dev/null
  kubectl wait --for=condition=Established crd/bitbucketconnections.bbconn.dev --timeout=30s >/dev/null
  kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl create configmap bitbucket-ca -n demo --from-file=ca.crt="$demo/pki/ca.crt" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -f examples/ >/dev/null
  # Discovery: the consumers' real CRDs, then objects they already have (examples/discovery/).
  local consumers
  consumers=$(bash tests/controlplane/consumer-crds.sh)
  kubectl apply --server-side -f "$consumers/argocd/" -f "$consumers/flux/" >/dev/null
  kubectl wait --for=condition=Established crd/applications.argoproj.io crd/gitrepositories.source.toolkit.fluxcd.io --timeout=30s >/dev/null
  kubectl apply -f examples/discovery/ >/dev/null
  # shellcheck disable=SC1091 # examples/demo-network.sh, from the repository root
  source examples/demo-network.sh
  "$bin/bbconn" run --metrics-addr 127.0.0.1:18080 --lease-namespace default --discover argocd,flux "${BBCONN_DEMO_FLAGS[@]}" > "$demo/operator.log" 2>&1 &
  echo $! > "$demo/operator.pid"
  log "operator pid $(cat "$demo/operator.pid"), metrics on http://127.0.0.1:18080/metrics"
  wait_checked
}

down() {
  if [ "${1:-}" != all ] && [ ! -f "$demo/started" ]; then
    log "the demo was not started by this script; leaving it running (make demo-down stops it)"
    return
  fi
  for p in "$demo/operator.pid" "$demo/sim.pid"; do
    if alive "$p"; then kill "$(cat "$p")"; fi
    rm -f "$p"
  done
  rm -f "$demo/started"
  bash tests/controlplane/down.sh
}

case ${1:-} in
  up) up ;;
  down) down ;;
  down-all) down all ;;
  *) echo "usage: $0 up|down|down-all" >&2; exit 2 ;;
esac
