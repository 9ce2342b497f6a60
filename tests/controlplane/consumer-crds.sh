#!/usr/bin/env bash
# Fetches the real CRDs of the consumers discovery reads (Argo CD's Application, Flux's source
# CRDs) from their own Go modules, at pinned versions the module proxy serves with this
# machine's Go (docs/design DISCOVERY.md), into a per-version cache outside the repo.
# Exits immediately when they are already cached.
#
# Env: BBCONN_CACHE (cache root, default ${XDG_CACHE_HOME:-~/.cache}/bbconn)
# Prints the directory holding argocd/ and flux/ on stdout; progress goes to stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARGOCD_MODULE=github.com/argoproj/argo-cd/v3
ARGOCD_VERSION=v3.4.0
FLUX_SOURCE_MODULE=github.com/fluxcd/source-controller
FLUX_SOURCE_VERSION=v1.7.0

OUT=$CACHE_ROOT/consumers/argocd-$ARGOCD_VERSION-source-controller-$FLUX_SOURCE_VERSION
if [[ -s $OUT/argocd/application-crd.yaml && -s $OUT/flux/source.toolkit.fluxcd.io_gitrepositories.yaml ]]; then
    log "consumer CRDs already in $OUT"
    echo "$OUT"
    exit 0
fi
command -v go >/dev/null || { log "go toolchain not found in PATH"; exit 1; }

# module_dir MODULE VERSION: the module's directory in the Go module cache (downloaded once).
module_dir() {
    local json
    # Outside any module: the download must not touch a go.mod.
    json=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$1@$2")
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

tmp=$OUT.tmp.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/argocd" "$tmp/flux"
log "fetching $ARGOCD_MODULE@$ARGOCD_VERSION and $FLUX_SOURCE_MODULE@$FLUX_SOURCE_VERSION"
argocd=$(module_dir "$ARGOCD_MODULE" "$ARGOCD_VERSION")
flux=$(module_dir "$FLUX_SOURCE_MODULE" "$FLUX_SOURCE_VERSION")
[[ -d $argocd && -d $flux ]] || { log "the module proxy did not serve them"; exit 1; }
cp "$argocd/manifests/crds/application-crd.yaml" "$tmp/argocd/"
# source-controller refuses to start without all six of its CRDs; the tests install them all.
cp "$flux"/config/crd/bases/source.toolkit.fluxcd.io_*.yaml "$tmp/flux/"
chmod -R u+w "$tmp"
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$tmp" "$OUT"
trap - EXIT
log "consumer CRDs in $OUT"
echo "$OUT"
