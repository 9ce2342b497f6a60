#!/usr/bin/env bash
# Runs the Argo CD health check (resource_customizations/bbconn.dev/BitbucketConnection) on
# its health_test.yaml with a real Lua 5.1 (Debian's lua5.1, installed if missing), in Argo
# CD's argocd-cm sandbox, both as health.lua and as shipped in docs/argocd/argocd-cm.yaml.
set -euo pipefail
# shellcheck source=../packaging/lib.sh
source "$(dirname "$0")/../packaging/lib.sh"
cd "$REPO_ROOT"
dir=tests/argocd/resource_customizations/bbconn.dev/BitbucketConnection
lua=$(lua_bin)
py=$(pkg_python)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" tests/argocd/yaml2lua.py "$dir/health_test.yaml" > "$tmp/cases.lua"
"$py" - docs/argocd/argocd-cm.yaml > "$tmp/argocd-cm.lua" <<'PY'
import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["data"]["resource.customizations.health.bbconn.dev_BitbucketConnection"], end="")
PY
echo "argocd: $("$lua" -v 2>&1 | head -1)"
echo "argocd: $dir/health.lua"
"$lua" tests/argocd/run_tests.lua "$dir/health.lua" "$tmp/cases.lua"
echo "argocd: docs/argocd/argocd-cm.yaml"
"$lua" tests/argocd/run_tests.lua "$tmp/argocd-cm.lua" "$tmp/cases.lua" | tail -1
