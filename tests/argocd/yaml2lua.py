#!/usr/bin/env python3
"""Turns an Argo CD health_test.yaml and the testdata it names into a Lua chunk that returns
the test cases, each with the object as a Lua table (as Argo CD hands `obj` to health.lua:
maps are tables, lists are 1-based arrays, numbers are numbers, null is nil).

usage: yaml2lua.py DIR/health_test.yaml > cases.lua
"""
import os
import sys

import yaml


def lua_string(s: str) -> str:
    out = ['"']
    for ch in s.encode("utf-8"):
        c = chr(ch)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif ch < 32 or ch >= 127:
            out.append(f"\\{ch:03d}")  # Lua 5.1: decimal escapes, byte by byte
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def lua(v, indent=0) -> str:
    pad = "  " * (indent + 1)
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return lua_string(v)
    if isinstance(v, list):
        items = [pad + lua(x, indent + 1) for x in v if x is not None]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    if isinstance(v, dict):
        items = [f"{pad}[{lua_string(str(k))}] = {lua(x, indent + 1)}" for k, x in v.items() if x is not None]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    # Dates and other scalars YAML may produce: as Argo CD sees them, strings.
    return lua_string(str(v))


def main() -> None:
    spec = sys.argv[1]
    base = os.path.dirname(spec)
    tests = yaml.safe_load(open(spec))["tests"]
    cases = []
    for t in tests:
        path = os.path.join(base, t["inputPath"])
        obj = yaml.safe_load(open(path))
        hs = t["healthStatus"]
        cases.append({"inputPath": t["inputPath"], "status": hs["status"], "message": hs.get("message", ""), "obj": obj})
    print("return " + lua(cases))


if __name__ == "__main__":
    main()
