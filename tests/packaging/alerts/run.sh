#!/usr/bin/env bash
# Alerting: promtool (Debian's prometheus package) checks the rules and runs their unit tests;
# check-shapes.py holds the test series, the rules and the Grafana dashboard to the metric names
# and labels the operator's code exposes; the dashboard's queries must parse.
#
# The exposition comes from the code, never from a committed snapshot: tests/packaging/main.rs
# (`cargo test --test packaging`) encodes the operator's metrics registry with every family fed,
# and writes it to $BBCONN_METRICS_EXPOSITION. `make packaging-test` makes it just before (the
# packaging-metrics target); run alone, this script makes it itself.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
promtool=$(promtool_bin)
py=$(pkg_python)
exposition=${BBCONN_METRICS_EXPOSITION:-}
if [[ -z $exposition ]]; then
    exposition=$REPO_ROOT/target/packaging/metrics.txt
    rm -f "$exposition"
    plog "making the metrics exposition from the code: cargo test --test packaging"
    BBCONN_METRICS_EXPOSITION=$exposition ${CARGO:-cargo} test -q --test packaging >&2
fi
[[ -s $exposition ]] || { plog "no metrics exposition at $exposition"; exit 1; }
echo "alerts: $("$promtool" --version 2>&1 | head -1)"
echo "alerts: the operator's metrics, from its code: ${exposition#"$REPO_ROOT/"} ($(grep -c '^# TYPE' "$exposition") families)"
# Prometheus's own parser reads the exposition: a parse error (exit 1) fails here; lint findings
# (exit 3: Prometheus's naming conventions, which OpenMetrics' HELP on the family name trips)
# are only shown.
rc=0
lint=$("$promtool" check metrics < "$exposition" 2>&1) || rc=$?
if ((rc != 0 && rc != 3)); then
    echo "$lint" >&2
    plog "promtool cannot parse the metrics exposition (exit $rc)"
    exit 1
fi
echo "alerts: promtool check metrics: parsed ($(grep -c . <<<"$lint") lint notes)"
"$promtool" check rules docs/alerting/rules.yaml
"$promtool" test rules tests/packaging/alerts/bbconn_test.yaml
"$py" tests/packaging/alerts/check-shapes.py "$exposition" \
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
