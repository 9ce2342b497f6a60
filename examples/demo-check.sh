#!/usr/bin/env bash
# `bbconn check` over examples/ against the Bitbucket simulator, without a cluster.
# The simulator listens on fixed loopback ports (sim/fixtures/demo.yaml); the flags below tell
# bbconn where the example host names really are, as curl's --connect-to would.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BBCONN_BIN_DIR:-target/release}
demo=target/demo
mkdir -p "$demo"

"$bin/bbconn-sim" --fixture sim/fixtures/demo.yaml --pki-dir "$demo/pki" > "$demo/sim.json" 2> "$demo/sim.log" &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$demo/sim.json" ] && break; sleep 0.1; done
[ -s "$demo/sim.json" ] || { echo "the simulator did not start:"; cat "$demo/sim.log"; exit 1; }

# The CA that signed the simulator's certificates, as the ConfigMap the examples reference.
{
  echo "apiVersion: v1"
  echo "kind: ConfigMap"
  echo "metadata: { name: bitbucket-ca, namespace: demo }"
  echo "data:"
  echo "  ca.crt: |"
  sed 's/^/    /' "$demo/pki/ca.crt"
} > "$demo/bitbucket-ca.yaml"

source examples/demo-network.sh
echo "\$ bbconn check -f examples/ -f $demo/bitbucket-ca.yaml ${BBCONN_DEMO_FLAGS[*]:0:2} ..."
set +e
"$bin/bbconn" check -f examples/ -f "$demo/bitbucket-ca.yaml" "${BBCONN_DEMO_FLAGS[@]}"
code=$?
set -e
echo
echo "bbconn check exited $code (0: all Ready; 1: some not Ready; 2: unusable input)."
