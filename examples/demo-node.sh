#!/usr/bin/env bash
# make demo-node: the demo as a cluster runs it. A real node (tests/node/up.sh: kubelet,
# containerd, runc in the network namespace bbconn-node), the simulator and the operator as Pods
# from the images `make image` built, the chart installed with helm, examples/ applied, and the
# same status shown as `make demo`. `make demo-node-down` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
bin=$(BBCONN_BUILD_NODE=1 tests/controlplane/build.sh 2>/dev/null)
helm=$(bash -c 'source tests/packaging/lib.sh && helm_bin')
k() { ip netns exec bbconn-node "$bin/kubectl" --kubeconfig target/node/kubeconfig "$@"; }

say "Starting a real node in the network namespace bbconn-node (first time: kubelet and friends are built from Go modules)"
bash tests/node/up.sh
say "The Bitbucket simulator as a Pod (Service bitbucket/bitbucket at 10.251.0.100)"
bash tests/node/deploy.sh sim
values=$(bash tests/node/deploy.sh values)
say "helm install bbconn charts/bbconn -n bbconn-system -f $values (image localhost/bbconn:dev)"
k create namespace bbconn-system --dry-run=client -o yaml | k apply -f - >/dev/null
k label namespace bbconn-system pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
ip netns exec bbconn-node env KUBECONFIG=target/node/kubeconfig HELM_CACHE_HOME=target/node/helm/cache \
    HELM_CONFIG_HOME=target/node/helm/config HELM_DATA_HOME=target/node/helm/data \
    "$helm" upgrade --install bbconn charts/bbconn -n bbconn-system -f "$values" --wait --timeout 120s >/dev/null
k get pods -n bbconn-system -o wide
k apply -f examples/ >/dev/null
for _ in $(seq 120); do
    pending=$(# shellcheck disable=SC2016 # a Go template, not shell
k get bbconn -n demo -o go-template='{{range .items}}{{if not .status}}x{{"\n"}}{{else}}{{if not .status.conditions}}x{{"\n"}}{{end}}{{end}}{{end}}' | grep -c x || true)
    [[ $pending -eq 0 ]] && break
    sleep 0.5
done

say "kubectl get bbconn -A"
k get bbconn -A
say "What is wrong, and what to do (status.problems)"
# shellcheck disable=SC2016 # a Go template, not shell
k get bbconn -n demo -o go-template='{{range .items}}{{$n := .metadata.name}}{{range .status.problems}}{{printf "%-28s %-8s %s/%s\n    remedy: %s\n" $n .severity .check .cause .remedy}}{{end}}{{end}}'

cat <<MSG

Look around (the cluster exists only inside the network namespace bbconn-node):
  alias k='ip netns exec bbconn-node $bin/kubectl --kubeconfig $PWD/target/node/kubeconfig'
  k get pods -A -o wide
  k logs -n bbconn-system deployment/bbconn
  k describe bbconn -n demo oci-revoked-token

Stop everything:  make demo-node-down
MSG
