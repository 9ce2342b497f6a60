#!/usr/bin/env bash
# Re-captures the Argo CD health check's testdata from real objects: the demo (the local
# control plane, the simulator, `bbconn run`, examples/) plus two connections of our own
# (tests/packaging/fixtures/: a rate-limited token, and a server that never answers so a new
# generation is checked slowly). Each file says where it came from; the two that are edited
# from a real object say how.
#
#   tests/packaging/capture-testdata.sh        # brings the demo up if needed, leaves it up
#
# Then run `make packaging-lua` and review the diff: captured messages carry timestamps and
# the simulator's certificate dates, so they change on every capture.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/packaging/lib.sh
use_project_kubectl
out=tests/argocd/resource_customizations/bbconn.dev/BitbucketConnection/testdata
mkdir -p "$out"
export KUBECONFIG=$PWD/target/local-cluster/kubeconfig
py=$(pkg_python)

bash "$REPO_ROOT/examples/demo-env.sh" up
silent_pid=$(start_silent_server 120)
trap 'kill "$silent_pid" 2>/dev/null || true' EXIT

# A connection that is created while we watch: its first event has no status yet.
kubectl delete bbconn -n demo packaging-ratelimited packaging-slow --ignore-not-found --wait >/dev/null
watch_file=$(mktemp)
timeout 20 kubectl get bbconn -n demo --field-selector metadata.name=packaging-ratelimited -w -o json --output-watch-events=false > "$watch_file" 2>/dev/null &
watch_pid=$!
sleep 1
kubectl apply -f tests/packaging/fixtures/ratelimited.yaml >/dev/null
kubectl apply -f tests/packaging/fixtures/slow.yaml >/dev/null
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=RateLimited bbconn/packaging-ratelimited -n demo --timeout=30s >/dev/null
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=ConnectionTimedOut bbconn/packaging-slow -n demo --timeout=30s >/dev/null
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true

# A new generation of the slow connection: first the old observedGeneration, then
# Reconciling=True while the check runs, then the result. Past the operator's --share-window
# (10 s) after the last check, so the new generation is checked afresh, not served the last
# result.
sleep 11
slow_watch=$(mktemp)
timeout 15 kubectl get bbconn -n demo packaging-slow -w -o json --output-watch-events=false > "$slow_watch" 2>/dev/null &
watch_pid=$!
sleep 1
kubectl patch bbconn -n demo packaging-slow --type merge -p "{\"spec\":{\"interval\":\"$((RANDOM % 50 + 10))m\"}}" >/dev/null
sleep 8
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true

kubectl get bbconn -n demo -o json > "$watch_file.all"

"$py" - "$out" "$watch_file" "$slow_watch" "$watch_file.all" <<'PY'
import json, sys, yaml

out, first_watch, slow_watch, all_file = sys.argv[1:]

def stream(path):
    dec, text, i, objs = json.JSONDecoder(), open(path).read(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return objs
        obj, i = dec.raw_decode(text, i)
        objs.append(obj)

def clean(o):
    md = o["metadata"]
    md.pop("managedFields", None)
    ann = md.get("annotations") or {}
    ann.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not ann:
        md.pop("annotations", None)
    return o

def cond(o, t):
    for c in (o.get("status") or {}).get("conditions") or []:
        if c["type"] == t:
            return c
    return None

def write(name, obj, how):
    with open(f"{out}/{name}.yaml", "w") as f:
        f.write(f"# {how}\n")
        yaml.safe_dump(clean(obj), f, sort_keys=False, width=100, allow_unicode=True)
    print(f"  {name}.yaml: {how}")

items = {o["metadata"]["name"]: o for o in json.load(open(all_file))["items"]}
cmd = "tests/packaging/capture-testdata.sh"
write("healthy", items["ox-scanner"], f"Captured by {cmd}: demo/ox-scanner, Ready=True")
write("healthy-warnings", items["hackolade"],
      f"Captured by {cmd}: demo/hackolade, Ready=True with Warning problems")
write("token-revoked", items["oci-revoked-token"],
      f"Captured by {cmd}: demo/oci-revoked-token, Ready=False and Stalled=True (TokenRevoked)")
write("insufficient-scopes", items["ox-missing-scopes"],
      f"Captured by {cmd}: demo/ox-missing-scopes, Ready=False and Stalled=True (InsufficientScopes)")
write("rate-limited", items["packaging-ratelimited"],
      f"Captured by {cmd}: demo/packaging-ratelimited (fixtures/ratelimited.yaml), Ready=Unknown (RateLimited)")

first = [o for o in stream(first_watch) if not o.get("status")]
assert first, "no event without status was seen for packaging-ratelimited"
write("no-status", first[0], f"Captured by {cmd}: demo/packaging-ratelimited as first created, before its first check")

slow = stream(slow_watch)
old = [o for o in slow if o["status"]["observedGeneration"] < o["metadata"]["generation"] and not cond(o, "Reconciling")]
rec = [o for o in slow if (cond(o, "Reconciling") or {}).get("status") == "True"]
assert old, "no event with an old observedGeneration was seen for packaging-slow"
assert rec, "no event with Reconciling=True was seen for packaging-slow"
write("old-generation", old[0], f"Captured by {cmd}: demo/packaging-slow just after a spec change, before the operator picked it up")
write("reconciling", rec[0], f"Captured by {cmd}: demo/packaging-slow while its new generation is checked (Reconciling=True)")

# Edited from real objects, for the branches the demo does not produce on its own.
o = json.loads(json.dumps(items["oci-revoked-token"]))
o["status"].pop("problems", None)
write("degraded-without-problems", o,
      f"Edited by {cmd} from demo/oci-revoked-token: status.problems removed (the message falls back to Ready's reason and message)")
o = json.loads(json.dumps(items["ox-scanner"]))
gen = o["metadata"]["generation"]
o["status"]["conditions"].append({
    "type": "Reconciling", "status": "True", "reason": "Checking",
    "message": f"checking generation {gen}", "observedGeneration": gen,
    "lastTransitionTime": o["status"]["lastCheckedTime"]})
write("reconciling-current-generation", o,
      f"Edited by {cmd} from demo/ox-scanner: Reconciling=True added, observedGeneration current")
PY
rm -f "$watch_file" "$watch_file.all" "$slow_watch"

# (The alert and dashboard checks read no capture: tests/packaging/main.rs makes the metrics
# exposition from the code on every run.)
