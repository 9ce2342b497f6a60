#!/usr/bin/env bash
# The Dockerfile, without an engine: BuildKit's own parser and linter read it
# (tests/packaging/dockerfile/, built from the Go module proxy), which checks its shape
# (multi-stage, rust:1.95 builder, distroless final image, USER 65532, ENTRYPOINT ["/bbconn"],
# CMD ["run"]) and extracts its `cargo build` command word for word. This script then runs
# exactly that command here (unless BBCONN_SKIP_CARGO=1) and checks the binary it produces at
# the path the Dockerfile copies: an x86-64 ELF for the Dockerfile's target that needs only
# what the final image has (glibc, libgcc_s: gcr.io/distroless/cc-debian12) and no glibc newer
# than Debian 12's 2.36. Outside the engine cargo writes under this checkout's target directory
# (CARGO_TARGET_DIR, a config's build.target-dir, or target/), which is where the binary is read.
# shellcheck disable=SC2154  # cargo, binary, target, builder, final: set by dockerfile.env (below)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

src=$PKG_DIR/dockerfile
sum=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)
tool=$TOOLS_DIR/dockerfile-check-$sum/dockerfile-check
if [[ ! -x $tool ]]; then
    plog "building the Dockerfile checker (BuildKit's parser) into ${tool%/*}"
    mkdir -p "${tool%/*}"
    (cd "$src" && CGO_ENABLED=0 nice -n 19 go build -p "$GO_BUILD_P" -trimpath -o "$tool" .)
fi
py=$(pkg_python)
mkdir -p "$REPO_ROOT/target/packaging"
json=$("$tool" Dockerfile)
"$py" - "$json" > "$REPO_ROOT/target/packaging/dockerfile.env" <<'PY'
import json, shlex, sys
r = json.loads(sys.argv[1])
if r.get("warnings"):
    sys.exit("Dockerfile lint warnings (BuildKit): " + "; ".join(r["warnings"]))
cargo = r["cargo"]
want = ["cargo", "build", "--release", "--locked", "--bin", "bbconn"]
if [w for w in cargo if not w.startswith("--target")][: len(want)] != want:
    sys.exit(f"the Dockerfile's cargo command {cargo} is not `{' '.join(want)} [--target T]`")
target = ""
for i, w in enumerate(cargo):
    if w == "--target":
        target = cargo[i + 1]
    elif w.startswith("--target="):
        target = w.split("=", 1)[1]
print("cargo=(" + " ".join(shlex.quote(w) for w in cargo) + ")")
print("binary=" + shlex.quote(r["binary"]))
print("target=" + shlex.quote(target))
print("builder=" + shlex.quote(r["builder"]))
print("final=" + shlex.quote(r["final"]))
PY
# shellcheck disable=SC1091
source "$REPO_ROOT/target/packaging/dockerfile.env"
host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
target=${target:-$host}
echo "dockerfile: $builder -> $final, target $target"
echo "dockerfile: ${cargo[*]}"
expected_binary=target/release/bbconn
[[ $target != "$host" || ${cargo[*]} == *--target* ]] && expected_binary=target/$target/release/bbconn
[[ $binary == "$expected_binary" ]] || { plog "the Dockerfile copies $binary, but ${cargo[*]} writes $expected_binary"; exit 1; }
# The Dockerfile's path is under the engine's /src/target; here cargo writes under its own
# target directory: CARGO_TARGET_DIR (a relative one from the checkout, where cargo runs here),
# else what cargo reports (it also reads build.target-dir from config files).
if [[ -n ${CARGO_TARGET_DIR:-} ]]; then
    target_dir=$CARGO_TARGET_DIR
    [[ $target_dir == /* ]] || target_dir=$REPO_ROOT/$target_dir
else
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
fi
binary=$target_dir/${binary#target/}
case $final in
gcr.io/distroless/static*) [[ $target == *-musl ]] || { plog "distroless/static needs a static (musl) build, not $target"; exit 1; } ;;
gcr.io/distroless/cc*) [[ $target == *-linux-gnu ]] || { plog "distroless/cc is for a glibc build, not $target"; exit 1; } ;;
esac

if [[ -n ${BBCONN_DOCKERFILE_BINARY:-} ]]; then
    # make test builds the image itself (tests/node/image.sh): check the binary that build made.
    binary=$BBCONN_DOCKERFILE_BINARY
    echo "dockerfile: checking $binary, built by the Dockerfile (make image)"
    [[ -x $binary ]] || { plog "$binary does not exist (run make image)"; exit 1; }
elif [[ ${BBCONN_SKIP_CARGO:-0} == 1 ]]; then
    echo "dockerfile: BBCONN_SKIP_CARGO=1: not running cargo; checking the existing $binary"
    [[ -x $binary ]] || { plog "$binary does not exist (build it, or run without BBCONN_SKIP_CARGO)"; exit 1; }
else
    echo "dockerfile: running it here"
    nice -n 10 "${cargo[@]}"
fi

# The binary: the target's architecture, and only what the final image provides.
readelf -h "$binary" | grep -q 'Machine:.*X86-64' || { plog "$binary is not x86-64"; exit 1; }
needed=$(readelf -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
if [[ $target == *-musl ]]; then
    [[ -z $needed ]] || { plog "$binary is not static: needs $needed"; exit 1; }
else
    for lib in $needed; do
        case $lib in
        libc.so.6 | libm.so.6 | libgcc_s.so.1 | ld-linux-x86-64.so.2 | libdl.so.2 | libpthread.so.0 | librt.so.1) ;;
        *) plog "$binary needs $lib, which $final does not have"; exit 1 ;;
        esac
    done
    newest=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
    "$py" -c "import sys; v=tuple(map(int,'${newest#GLIBC_}'.split('.'))); sys.exit(0 if v <= (2,36) else 1)" ||
        { plog "$binary needs $newest; Debian 12 (the final image) has glibc 2.36"; exit 1; }
    echo "dockerfile: $binary: x86-64, needs ${needed}(newest symbol $newest <= GLIBC_2.36)"
fi
"$binary" --version >/dev/null 2>&1 || "$binary" --help >/dev/null
echo "dockerfile: ok"
