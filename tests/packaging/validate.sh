#!/usr/bin/env bash
# Validates every manifest the project ships against a real API server and kubeconform:
#   - the chart rendered with default values, and with watchNamespaces + ServiceMonitor +
#     PrometheusRule (+ NetworkPolicy CIDRs, extraArgs, image digest)
#   - deploy/ (the CRD and the rendered install), docs/alerting/prometheusrule.yaml,
#     docs/argocd/argocd-cm.yaml, examples/ and tests/packaging/fixtures/
# on a throwaway local control plane (tests/controlplane, on free ports, in
# target/packaging-cluster, stopped afterwards), where it also installs for real:
#   1. the CRDs applied for real: crds/, and ServiceMonitor and PrometheusRule from the
#      prometheus-operator module (Go module proxy); the namespaces created
#   2. kubeconform -strict with schemas generated from that server's /openapi/v2 and from the
#      CRDs (tests/packaging/openapi2jsonschema.py: nothing downloaded)
#   3. kubectl apply --dry-run=server of every file
#   4. Pod Security: the operator's pod template admitted under `restricted` in bbconn-system
#   5. kubectl apply -f deploy/; helm install, upgrade (every option on) and uninstall
#   6. the documented `kubectl patch configmap argocd-cm --patch-file docs/argocd/argocd-cm.yaml`
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
use_project_kubectl
work=$REPO_ROOT/target/packaging
rm -rf "$work/rendered" "$work/schemas"
mkdir -p "$work/rendered" "$work/schemas"
py=$(pkg_python)
kubeconform=$(kubeconform_bin)
promcrds=$(prometheus_operator_crds)
# Argo CD's and Flux's CRDs, from their Go modules: examples/discovery/ holds their objects.
consumers=$(bash tests/controlplane/consumer-crds.sh)

# --- render ----------------------------------------------------------------
render > "$work/rendered/chart-default.yaml"
render -f tests/packaging/values-full.yaml > "$work/rendered/chart-full.yaml"
"$py" - "$work/rendered" <<'PY'
import sys, yaml
d = sys.argv[1]
def rules(path, kinds):
    return [doc["rules"] for doc in yaml.safe_load_all(open(path)) if doc and doc["kind"] in kinds and not doc["metadata"]["name"].endswith("leader-election") and "-discovery-" not in doc["metadata"]["name"]]
cluster = rules(f"{d}/chart-default.yaml", {"ClusterRole"})
ns = rules(f"{d}/chart-full.yaml", {"Role"})
assert len(cluster) == 1 and len(ns) == 2, (len(cluster), len(ns))
assert all(r == cluster[0] for r in ns), "the per-namespace Roles' rules differ from the ClusterRole's"
full = list(yaml.safe_load_all(open(f"{d}/chart-full.yaml")))
kinds = sorted({x["kind"] for x in full if x})
assert not any(x["kind"] in ("ClusterRole", "ClusterRoleBinding") for x in full if x), "watchNamespaces still renders cluster RBAC"
dep = next(x for x in full if x and x["kind"] == "Deployment")
args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
for a in ("--watch-namespace=team-a", "--watch-namespace=team-b", "--lease-namespace=bbconn-system", "--concurrency=64"):
    assert a in args, (a, args)
# Discovery: its flags on the unsharded Deployment only, and a Role per source namespace.
for a in ("--discover=argocd,flux", "--discover-argocd-namespace=argocd", "--discover-flux-namespace=flux-system", "--discover-datacenter-host=bitbucket.example.com"):
    assert a in args, (a, args)
for other in [x for x in full if x and x["kind"] == "Deployment"][1:]:
    assert not any(a.startswith("--discover") for a in other["spec"]["template"]["spec"]["containers"][0]["args"]), "a shard discovers"
discovery = sorted((x["metadata"]["namespace"], x["metadata"]["name"]) for x in full if x and x["kind"] == "Role" and "-discovery-" in x["metadata"]["name"])
assert discovery == [("argocd", "bbconn-discovery-argocd"), ("flux-system", "bbconn-discovery-flux")], discovery
# Shards: every Deployment's and PodDisruptionBudget's selector picks exactly one Deployment's
# pods, or the Deployments fight over pods and a drain may take a shard's only replica.
def selects(sel, labels):
    ok = all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items())
    for e in sel.get("matchExpressions", []):
        has = e["key"] in labels
        ok = ok and {"Exists": has, "DoesNotExist": not has,
                     "In": has and labels[e["key"]] in e.get("values", []),
                     "NotIn": not has or labels[e["key"]] not in e.get("values", [])}[e["operator"]]
    return ok
deps = [x for x in full if x and x["kind"] == "Deployment"]
pdbs = [x for x in full if x and x["kind"] == "PodDisruptionBudget"]
assert len(deps) == 3 and len(pdbs) == 3, (len(deps), len(pdbs))
for sel_of in deps + pdbs:
    picked = [d["metadata"]["name"] for d in deps if selects(sel_of["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
    assert len(picked) == 1, (sel_of["kind"], sel_of["metadata"]["name"], picked)
print(f"render: default and full values; full has {', '.join(kinds)}; Roles' rules == ClusterRole's; "
      f"{len(deps)} shard Deployments and PodDisruptionBudgets, each selecting one Deployment's pods")
PY

# --- cluster -----------------------------------------------------------------
# Three distinct free ports (held open together while they are picked).
read -r BBCONN_ETCD_PORT BBCONN_ETCD_PEER_PORT BBCONN_APISERVER_PORT < <("$py" -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
export BBCONN_CLUSTER_DIR=$REPO_ROOT/target/packaging-cluster
export BBCONN_ETCD_PORT BBCONN_ETCD_PEER_PORT BBCONN_APISERVER_PORT
trap 'bash tests/controlplane/down.sh >/dev/null 2>&1 || true' EXIT
if ! bash tests/controlplane/up.sh > "$work/controlplane.log" 2>&1; then
    cat "$work/controlplane.log" >&2
    plog "the throwaway control plane did not start"
    exit 1
fi
grep "ready after" "$work/controlplane.log" || true
export KUBECONFIG=$BBCONN_CLUSTER_DIR/kubeconfig
export KUBECACHEDIR=$work/kube-cache # not ~/.kube/cache: nothing an earlier cluster on this port left
rm -rf "$KUBECACHEDIR"
kubectl version -o json 2>/dev/null | "$py" -c 'import json,sys; print("cluster: kube-apiserver", json.load(sys.stdin)["serverVersion"]["gitVersion"])'

kubectl apply -f crds/ >/dev/null
kubectl apply --server-side -f "$promcrds/" >/dev/null # too large for client-side apply
kubectl wait --for=condition=Established --timeout=60s crd/bitbucketconnections.bbconn.dev \
    crd/servicemonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null
# Established is not yet in discovery: wait until kubectl can name the kinds (at most 30 s).
for r in bitbucketconnections.bbconn.dev servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com; do
    for i in $(seq 60); do
        kubectl get "$r" -A >/dev/null 2>&1 && break
        ((i < 60)) || { kubectl get "$r" -A >&2; plog "$r is not served 30 s after Established"; exit 1; }
        sleep 0.5
    done
done
for ns in team-a team-b argocd flux-system demo; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
# deploy/'s Namespace for real (with its Pod Security label): the rest is dry-run into it.
"$py" -c 'import sys,yaml; print(yaml.safe_dump(next(d for d in yaml.safe_load_all(open("deploy/10-bbconn.yaml")) if d["kind"]=="Namespace")))' |
    kubectl apply -f - >/dev/null

# --- kubeconform ---------------------------------------------------------------
kubectl get --raw /openapi/v2 > "$work/openapi-v2.json"
"$py" tests/packaging/openapi2jsonschema.py "$work/schemas" --openapi "$work/openapi-v2.json" \
    --crd crds/*.yaml "$promcrds"/*.yaml "$consumers"/flux/*.yaml "$consumers"/argocd/*.yaml
files=("$work/rendered/chart-default.yaml" "$work/rendered/chart-full.yaml" deploy/ docs/alerting/prometheusrule.yaml
    docs/argocd/argocd-cm.yaml examples/ tests/packaging/fixtures/)
echo "kubeconform $("$kubeconform" -v), -strict, local schemas:"
"$kubeconform" -strict -summary -output text \
    -schema-location "$work/schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    "${files[@]}"

# --- server-side dry run --------------------------------------------------------
echo "kubectl apply --dry-run=server:"
for f in "${files[@]}"; do
    out=$(kubectl apply --dry-run=server -f "$f" 2>&1) || { echo "$out" >&2; plog "the API server rejected $f"; exit 1; }
    printf '  %-52s %3d objects accepted\n' "${f#"$work/"}" "$(grep -c 'server dry run' <<<"$out")"
done

# --- Pod Security: restricted -----------------------------------------------------
"$py" - "$work/rendered/chart-default.yaml" > "$work/rendered/pod.yaml" <<'PY'
import sys, yaml
dep = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Deployment")
t = dep["spec"]["template"]
print(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "bbconn-pod-security", "namespace": "bbconn-system", "labels": t["metadata"]["labels"]},
                      "spec": t["spec"]}))
PY
kubectl apply --dry-run=server -f "$work/rendered/pod.yaml" >/dev/null
refused "a pod without a securityContext in bbconn-system" 'violates PodSecurity "restricted' \
    kubectl run psa-probe -n bbconn-system --image=busybox --restart=Never --dry-run=server
echo "pod security: the operator's pod is admitted under 'restricted' in bbconn-system (a plain pod is not)"

# --- install for real, as the README says -------------------------------------------
helm=$(helm_bin)
echo "install: helm install bbconn charts/bbconn --namespace bbconn-system --create-namespace"
"$helm" install bbconn charts/bbconn --namespace bbconn-system --create-namespace > "$work/helm-install.txt"
grep -q 'kubectl wait --for=condition=Ready bbconn/NAME' "$work/helm-install.txt" || { cat "$work/helm-install.txt"; plog "NOTES.txt not shown"; exit 1; }
sed -n '/^NOTES:/,$p' "$work/helm-install.txt" | sed 's/^/  /'
kubectl get deploy,svc,sa,pdb,networkpolicy -n bbconn-system -o name | tr '\n' ' ' | sed 's/^/  /; s/$/\n/'
echo "install: helm upgrade bbconn charts/bbconn -f tests/packaging/values-full.yaml (watchNamespaces, ServiceMonitor, PrometheusRule)"
"$helm" upgrade bbconn charts/bbconn --namespace bbconn-system -f tests/packaging/values-full.yaml >/dev/null
kubectl get role,rolebinding -n team-a -o name | grep -q role.rbac.authorization.k8s.io/bbconn
kubectl get servicemonitor,prometheusrule -n bbconn-system -o name | tr '\n' ' ' | sed 's/^/  /; s/$/\n/'
refused "the ClusterRole after the upgrade to watchNamespaces" '"bbconn" not found' \
    kubectl get clusterrole bbconn
"$helm" uninstall bbconn --namespace bbconn-system >/dev/null
echo "install: helm uninstall bbconn: done"
echo "install: kubectl apply -f deploy/"
kubectl apply -f deploy/ | sed 's/^/  /'

# --- Argo CD: the documented argocd-cm patch keeps the ConfigMap's other keys -------------
kubectl create configmap argocd-cm -n argocd --from-literal=url=https://argocd.example.com >/dev/null
kubectl patch configmap argocd-cm -n argocd --patch-file docs/argocd/argocd-cm.yaml >/dev/null
kubectl get configmap argocd-cm -n argocd -o json | "$py" -c '
import json, sys
d = json.load(sys.stdin)["data"]
lua = open("tests/argocd/resource_customizations/bbconn.dev/BitbucketConnection/health.lua").read()
assert d.get("url") == "https://argocd.example.com", "the patch dropped argocd-cm keys"
assert d["resource.customizations.health.bbconn.dev_BitbucketConnection"] == lua, "the patched script is not health.lua"
print("argocd: kubectl patch configmap argocd-cm --patch-file docs/argocd/argocd-cm.yaml adds health.lua, keeps the other keys")'
