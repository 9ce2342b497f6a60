#!/usr/bin/env python3
"""Writes kubeconform schemas (no download): one standalone, strict JSON schema per kind,
from the API server's /openapi/v2 document (built-in kinds) and from CRD files (their
openAPIV3Schema), in the layout

    OUT/{group}/{kind}_{version}.json      group: the apiVersion's group; "v1" for the core group

which kubeconform reads with
    -schema-location 'OUT/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'

Strict as kubeconform's own "-strict" schemas (after openapi2jsonschema): objects that list
their properties reject others, int-or-string accepts both, optional fields accept null.

usage: openapi2jsonschema.py OUT --openapi openapi-v2.json [--crd FILE.yaml ...]
"""
import argparse
import copy
import json
import os

import yaml


def strict(node, preserve=False):
    """Adds additionalProperties: false to objects with properties; int-or-string → oneOf."""
    if isinstance(node, list):
        return [strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    keep = node.get("x-kubernetes-preserve-unknown-fields", preserve)
    out = {}
    for k, v in node.items():
        if k in ("properties", "patternProperties", "definitions") and isinstance(v, dict):
            out[k] = {name: strict(s) for name, s in v.items()}
        else:
            out[k] = strict(v)
    if "properties" in out and "additionalProperties" not in out and not keep:
        out["additionalProperties"] = False
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def allow_null_optional(node):
    """Optional properties may be null (as kubectl and the API server accept)."""
    if isinstance(node, list):
        return [allow_null_optional(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: ({n: allow_null_optional(x) for n, x in v.items()} if k in MAPS and isinstance(v, dict) else allow_null_optional(v))
           for k, v in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        required = set(out.get("required", []))
        for name, s in props.items():
            if name not in required and isinstance(s, dict) and isinstance(s.get("type"), str):
                s["type"] = [s["type"], "null"]
    return out


MAPS = ("properties", "patternProperties", "definitions")


def drop_extensions(node):
    """Drops the x-kubernetes-* keywords (meaningless to JSON schema) to keep the files small;
    properties of that name (JSONSchemaProps has them) stay."""
    if isinstance(node, list):
        return [drop_extensions(x) for x in node]
    if not isinstance(node, dict):
        return node
    return {k: ({n: drop_extensions(x) for n, x in v.items()} if k in MAPS and isinstance(v, dict) else drop_extensions(v))
            for k, v in node.items() if k in MAPS or not k.startswith("x-kubernetes-")}


def write(out_dir, group, kind, version, schema):
    d = os.path.join(out_dir, group)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{kind.lower()}_{version.lower()}.json")
    with open(path, "w") as f:
        json.dump(schema, f, separators=(",", ":"))
    return path


def refs(node, found):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/definitions/"):
            found.add(r[len("#/definitions/"):])
        for v in node.values():
            refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def from_openapi(out_dir, path):
    doc = json.load(open(path))
    defs = doc["definitions"]
    n = 0
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            # The kinds users write, not the API's own list/option/event types.
            if kind.endswith("List") or kind in ("WatchEvent", "DeleteOptions", "Status", "APIGroup",
                                                 "APIGroupList", "APIResourceList", "APIVersions"):
                continue
            if not d.get("properties", {}).get("metadata"):
                continue
            need, todo = set(), [name]
            while todo:
                cur = todo.pop()
                if cur in need:
                    continue
                need.add(cur)
                found = set()
                refs(defs[cur], found)
                todo.extend(found - need)
            schema = copy.deepcopy(d)
            schema["definitions"] = {k: copy.deepcopy(defs[k]) for k in sorted(need) if k != name}
            schema["$schema"] = "http://json-schema.org/draft-04/schema#"
            schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version}" if group else version]}
            schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
            schema = allow_null_optional(strict(schema))
            schema = drop_extensions(schema)
            write(out_dir, group or version, kind, version, schema)
            n += 1
    return n


def from_crds(out_dir, paths):
    n = 0
    for p in paths:
        for crd in yaml.safe_load_all(open(p)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for v in spec["versions"]:
                s = (v.get("schema") or {}).get("openAPIV3Schema")
                if s is None:
                    continue
                schema = drop_extensions(allow_null_optional(strict(copy.deepcopy(s))))
                schema.setdefault("properties", {})
                schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{spec['group']}/{v['name']}"]}
                schema["properties"]["kind"] = {"type": "string", "enum": [spec["names"]["kind"]]}
                schema["properties"]["metadata"] = {"type": "object"}
                schema["additionalProperties"] = False
                schema["$schema"] = "http://json-schema.org/draft-04/schema#"
                write(out_dir, spec["group"], spec["names"]["kind"], v["name"], schema)
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--openapi")
    ap.add_argument("--crd", nargs="*", default=[])
    a = ap.parse_args()
    n = from_openapi(a.out, a.openapi) if a.openapi else 0
    m = from_crds(a.out, a.crd)
    print(f"schemas: {n} built-in kinds from /openapi/v2, {m} from CRDs, in {a.out}")


if __name__ == "__main__":
    main()
