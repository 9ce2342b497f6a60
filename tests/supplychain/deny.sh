#!/usr/bin/env bash
# The supply-chain check (issue 17): cargo-deny's licenses, bans and sources checks against the
# policy in deny.toml at the repository root. Fails on any violation.
#
# cargo-deny is pinned (CARGO_DENY_VERSION below) and installed once from crates.io with
# `cargo install --locked` into a per-version cache outside the repo (a few minutes the first
# time); later runs reuse it and take about a second.
#
# Advisories are not checked: their database (RustSec) is a git repository on GitHub, which
# this project's machines and CI cannot reach. `--offline` keeps cargo-deny from trying; the
# crates themselves come from crates.io through `cargo fetch`.
#
# Env:
#   BBCONN_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/bbconn)
# Progress goes to stderr; cargo-deny's findings too.
set -euo pipefail

CARGO_DENY_VERSION=0.20.2 # builds with rust-version >= 1.88

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE_ROOT=${BBCONN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bbconn}
TOOL_DIR=$CACHE_ROOT/tools/cargo-deny-$CARGO_DENY_VERSION
DENY=$TOOL_DIR/bin/cargo-deny

log() { echo "supplychain: $*" >&2; }

installed_version() { "$DENY" --version 2>/dev/null | awk '{ print $2 }'; }

if [[ -x $DENY && $(installed_version) == "$CARGO_DENY_VERSION" ]]; then
    log "cargo-deny $CARGO_DENY_VERSION already in $TOOL_DIR"
else
    command -v cargo >/dev/null || { log "cargo not found in PATH"; exit 1; }
    mkdir -p "$CACHE_ROOT/tools"
    # Install into a temporary root and rename it into place, so an interrupted install never
    # leaves a half-written tool behind; the build directory is temporary too (not target/).
    tmp=$(mktemp -d "$CACHE_ROOT/tools/.cargo-deny-$CARGO_DENY_VERSION.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    log "installing cargo-deny $CARGO_DENY_VERSION from crates.io into $TOOL_DIR ... (first time takes a few minutes)"
    start=$SECONDS
    CARGO_TARGET_DIR=$tmp/build nice -n 19 cargo install --quiet --locked \
        "cargo-deny@$CARGO_DENY_VERSION" --root "$tmp/root"
    rm -rf "$TOOL_DIR"
    mv -T "$tmp/root" "$TOOL_DIR"
    rm -rf "$tmp"
    trap - EXIT
    [[ $(installed_version) == "$CARGO_DENY_VERSION" ]] || {
        log "installed cargo-deny does not report version $CARGO_DENY_VERSION"
        exit 1
    }
    log "installed cargo-deny $CARGO_DENY_VERSION in $((SECONDS - start))s"
fi

cd "$REPO_ROOT"
# cargo-deny reads `cargo metadata` for every target platform, so every crate in Cargo.lock
# (Windows- and macOS-only ones too) must be in the local registry before `--offline`. A no-op
# once they are; crates.io is reachable.
cargo fetch --locked --quiet

log "cargo deny --offline --locked --all-features check licenses bans sources (deny.toml)"
log "advisories not checked: the RustSec database is a git repository on GitHub, unreachable here"
PATH=$TOOL_DIR/bin:$PATH cargo deny --offline --locked --all-features \
    check --show-stats licenses bans sources
