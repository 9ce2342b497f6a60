#!/usr/bin/env bash
# What the node e2e test (tests/node/main.rs) and `make demo-node` put on the node besides the chart.
#   deploy.sh sim      the simulator Pod and Service (tests/node/sim.yaml), namespace demo and its
#                      bitbucket-ca ConfigMap holding the CA the simulator made
#   deploy.sh values   target/node/values.yaml: the local image and the operator's network flags
#                      (examples/demo-network.sh, with the simulator's Service for 127.0.0.1)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=$(BBCONN_BUILD_NODE=1 "$REPO_ROOT/tests/controlplane/build.sh" 2>/dev/null)
KUBECTL=$BIN/kubectl
SIM_IP=10.251.0.100

sim() {
    node_kubectl apply -f "$NODE_SCRIPTS/sim.yaml" >/dev/null
    sed 's/127\.0\.0\.1:/0.0.0.0:/' "$REPO_ROOT/sim/fixtures/demo.yaml" >"$STATE/demo-fixture.yaml"
    node_kubectl create configmap bitbucket-sim-fixture -n bitbucket \
        --from-file=demo.yaml="$STATE/demo-fixture.yaml" --dry-run=client -o yaml | node_kubectl apply -f - >/dev/null
    node_kubectl rollout status deployment/bitbucket-sim -n bitbucket --timeout=60s >/dev/null
    local line=""
    for _ in $(seq 50); do
        line=$(node_kubectl logs -n bitbucket deployment/bitbucket-sim | grep -m1 '^{"' || true)
        [[ -n $line ]] && break
        sleep 0.2
    done
    [[ -n $line ]] || { log "the simulator printed no listeners line"; exit 1; }
    python3 -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1])["caCert"])' "$line" >"$STATE/sim-ca.crt"
    node_kubectl create namespace demo --dry-run=client -o yaml | node_kubectl apply -f - >/dev/null
    node_kubectl create configmap bitbucket-ca -n demo --from-file=ca.crt="$STATE/sim-ca.crt" \
        --dry-run=client -o yaml | node_kubectl apply -f - >/dev/null
    log "simulator Ready at $SIM_IP (Service bitbucket/bitbucket)"
}

values() {
    # shellcheck disable=SC1091 # examples/demo-network.sh
    source "$REPO_ROOT/examples/demo-network.sh"
    {
        echo "# Written by tests/node/deploy.sh values: the image built by make image, and"
        echo "# examples/demo-network.sh with the simulator's Service in place of 127.0.0.1."
        echo "image: {repository: localhost/bbconn, tag: dev, pullPolicy: Never}"
        echo "extraArgs:"
        echo "  - --address-class=10.251.0.0/24=public"
        local i=0 flag value
        while ((i < ${#BBCONN_DEMO_FLAGS[@]})); do
            flag=${BBCONN_DEMO_FLAGS[i]} value=${BBCONN_DEMO_FLAGS[i + 1]}
            i=$((i + 2))
            [[ $flag == --address-class ]] && continue
            echo "  - $flag=${value//127.0.0.1/$SIM_IP}"
        done
    } >"$STATE/values.yaml"
    echo "$STATE/values.yaml"
}

case ${1:-} in
sim) sim ;;
values) values ;;
*) echo "usage: $0 sim|values" >&2; exit 2 ;;
esac
