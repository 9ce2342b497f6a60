#!/usr/bin/env bash
# Builds Flux's source-controller from its Go module (pinned below; the version the module proxy
# serves with this machine's Go, docs/design DISCOVERY.md) into a per-version cache outside the
# repo, for the tests that take its Ready verdict as the oracle for bbconn's. Exits immediately
# when it is already cached. Pure Go (CGO_ENABLED=0); about 4 minutes on 2 cores.
#
# It is built through a scratch module that requires it: building inside a copy of its module
# fails (its `replace .../api => ./api` points at a folder the module zip lacks), and a
# dependency's replace directives are ignored, so its one other replace is repeated here.
#
# Env: BBCONN_CACHE (cache root), BBCONN_GO_BUILD_P=N (go build -p N).
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/fluxcd/source-controller
VERSION=v1.7.0
OUT_DIR=$CACHE_ROOT/source-controller/$VERSION
BIN=$OUT_DIR/source-controller
if [[ -x $BIN ]]; then
    log "source-controller $VERSION already in $OUT_DIR"
    echo "$BIN"
    exit 0
fi
command -v go >/dev/null || { log "go toolchain not found in PATH"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT_DIR"
# The module's own replace for go-digest, read from its go.mod (the proxy serves it).
modfile=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
digest_replace=$(awk '$1 == "replace" && $2 == "github.com/opencontainers/go-digest" { $1 = ""; print }' "$modfile")
cat > "$work/go.mod" <<EOF
module bbconn.local/source-controller

go 1.25

require $MODULE $VERSION
EOF
[[ -n $digest_replace ]] && echo "replace $digest_replace" >> "$work/go.mod"
cat > "$work/tools.go" <<EOF
//go:build tools

package tools

import _ "$MODULE"
EOF
start=$SECONDS
log "building source-controller $VERSION (first build takes a while)"
(
    cd "$work"
    export GOFLAGS=-mod=mod CGO_ENABLED=0
    go mod tidy >&2
    nice -n 19 go build -trimpath ${BBCONN_GO_BUILD_P:+-p "$BBCONN_GO_BUILD_P"} -ldflags "-s -w" \
        -o "$BIN.tmp.$$" "$MODULE" >&2
)
mv -f "$BIN.tmp.$$" "$BIN"
log "built source-controller in $((SECONDS - start))s"
echo "$BIN"
