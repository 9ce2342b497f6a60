#!/usr/bin/env python3
"""Checks that the alert tests, the alert rules and the Grafana dashboard use the operator's
metrics as its code exposes them (EXPOSITION: written by tests/packaging/main.rs, `cargo test
--test packaging`, from the operator's metrics registry with every family fed):

- every input series of bbconn_test.yaml is a metric of the exposition with exactly its label
  names, plus only the labels a Prometheus scrape adds (job, instance, pod, service, endpoint,
  container; and namespace on series that have no namespace label of their own);
- label values that the operator takes from a closed set are values it emits: `check` (the
  histogram is fed for every check), `type` (those, and Ready, Stalled, Reconciling), `status`
  and `result`, all read from the exposition;
- every bbconn_* metric named in the rules and the dashboard exists in the exposition.

usage: check-shapes.py EXPOSITION TEST_FILE RULES_FILE DASHBOARD_JSON
"""
import json
import re
import sys

import yaml

TARGET_LABELS = {"job", "instance", "pod", "service", "endpoint", "container"}
SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_sample(path):
    shapes, values = {}, {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE_LINE.match(line)
        if not m:
            raise SystemExit(f"{path}: cannot parse {line!r}")
        name, labels = m.group(1), dict(LABEL.findall(m.group(2) or ""))
        shapes.setdefault(name, set()).add(frozenset(labels))
        for k, v in labels.items():
            values.setdefault((name, k), set()).add(v)
    return shapes, values


def parse_series(s):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$', s.strip())
    if not m:
        raise SystemExit(f"cannot parse series {s!r}")
    return m.group(1), dict(LABEL.findall(m.group(2)))


def closed_sets(values):
    """The closed label sets, (metric, label) -> values, as the exposition shows them."""
    def of(metric, label):
        got = values.get((metric, label), set())
        if not got:
            raise SystemExit(f"the exposition has no {metric}{{{label}}} series to read the closed set from")
        return got
    checks = of("bbconn_check_duration_seconds_bucket", "check")
    types = checks | {"Ready", "Stalled", "Reconciling"}
    return {
        ("bbconn_check_duration_seconds_bucket", "check"): checks,
        ("bbconn_connection_condition", "type"): types,
        ("bbconn_connection_condition", "status"): of("bbconn_connection_condition", "status"),
        ("bbconn_reconcile_total", "result"): of("bbconn_reconcile_total", "result"),
    }


def main():
    sample, test_file, rules_file, dashboard = sys.argv[1:5]
    shapes, values = parse_sample(sample)
    closed = closed_sets(values)
    errors = []
    n = 0
    for t in yaml.safe_load(open(test_file))["tests"]:
        for s in t.get("input_series", []):
            name, labels = parse_series(s["series"])
            if name == "up":
                continue  # Prometheus's own
            n += 1
            if name not in shapes:
                errors.append(f"{t['name']}: {name} is not in the operator's output")
                continue
            own = set(labels) - TARGET_LABELS
            matches = [sh for sh in shapes[name] if sh == own or (sh | {"namespace"}) == own]
            if not matches:
                errors.append(f"{t['name']}: {name} has labels {sorted(own)}; the operator's are "
                              f"{[sorted(sh) for sh in shapes[name]]} (plus scrape labels)")
            for k, v in labels.items():
                allowed = closed.get((name, k))
                if allowed is not None and v not in allowed:
                    errors.append(f"{t['name']}: {name}{{{k}={v!r}}}: the operator emits {sorted(allowed)}")
    exprs = []
    for g in yaml.safe_load(open(rules_file))["groups"]:
        for r in g["rules"]:
            exprs.append(("rule " + r.get("alert", r.get("record", "?")), r["expr"]))
            for a in (r.get("annotations") or {}).values():
                exprs.append(("annotation of " + r.get("alert", "?"), a))
    def walk(panels):
        for p in panels:
            for tgt in p.get("targets", []):
                exprs.append((f"panel {p.get('title')!r}", tgt.get("expr", "")))
            yield from walk(p.get("panels", []))
            yield p
    d = json.load(open(dashboard))
    for _ in walk(d.get("panels", [])):
        pass
    for v in (d.get("templating") or {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        exprs.append((f"variable {v.get('name')}", q or ""))
    known = set(shapes)
    for name in list(shapes):
        if name.endswith("_bucket"):
            known.add(name[: -len("_bucket")])
    for where, e in exprs:
        for metric in set(re.findall(r'\bbbconn_[a-z_]+', e)):
            if metric not in known:
                errors.append(f"{where}: {metric} is not in the operator's output")
    if errors:
        print("\n".join(errors))
        raise SystemExit(1)
    print(f"shapes: {n} test series, {len(exprs)} expressions match the metrics the operator's code exposes")


if __name__ == "__main__":
    main()
