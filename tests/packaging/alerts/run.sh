#!/usr/bin/env bash
# Alerting: promtool (Debian's prometheus package) checks the rules and runs their unit tests;
# check-shapes.py holds the test series, the rules and the Grafana dashboard to the operator's
# real metric names and labels (metrics-sample.txt); the dashboard's queries must parse.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
promtool=$(promtool_bin)
py=$(pkg_python)
echo "alerts: $("$promtool" --version 2>&1 | head -1)"
"$promtool" check rules docs/alerting/rules.yaml
"$promtool" test rules tests/packaging/alerts/bbconn_test.yaml
"$py" tests/packaging/alerts/check-shapes.py tests/packaging/alerts/metrics-sample.txt \
    tests/packaging/alerts/bbconn_test.yaml docs/alerting/rules.yaml docs/grafana/bbconn.json
# Every dashboard query, with Grafana's variables filled in, as a recording rule: promtool
# parses each with Prometheus's own PromQL parser.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" - docs/grafana/bbconn.json > "$tmp/dashboard-rules.yaml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
rules = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            e = t["expr"].replace("$__rate_interval", "5m").replace("$namespace", ".*")
            rules.append({"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": e})
        walk(p.get("panels", []))
walk(d["panels"])
assert d["uid"] and d["title"] and rules
print(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
PY
"$promtool" check rules "$tmp/dashboard-rules.yaml" | sed 's/^/  dashboard: /'
