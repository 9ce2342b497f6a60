#!/usr/bin/env bash
# make image: bbconn's container images, built with buildah from the repository's own Dockerfile
# and sim/Dockerfile (the files `docker build` reads), and the pod sandbox image:
#   localhost/bbconn:dev  localhost/bbconn-sim:dev  localhost/pause:bbconn   in buildah's storage
#   $BBCONN_NODE_DIR/images/{bbconn,bbconn-sim,pause}.tar   OCI archives, for
#                                                           `ctr -n k8s.io images import`
# No registry is reachable here, so the Dockerfiles' two FROM images are replaced, through
# buildah's named build contexts (--build-context NAME=container-image://IMAGE; the Dockerfiles
# stay as users build them), by equivalents made locally:
#   rust:1.95-bookworm                     Debian bookworm (mmdebstrap: gcc, libc6-dev,
#                                          ca-certificates) + this machine's Rust 1.95 toolchain,
#                                          with the official image's ENV
#   gcr.io/distroless/cc-debian12:nonroot  scratch + Debian 12's glibc 2.36 libraries and
#                                          libgcc_s (what the binaries link to) and CA bundle,
#                                          from the builder's bookworm; distroless's passwd,
#                                          group, nsswitch.conf, os-release, /tmp, /root,
#                                          /home/nonroot; user 65532
# The builder (the slow part: a Debian bootstrap) is cached as an OCI archive keyed by its
# inputs under ${BBCONN_CACHE:-~/.cache/bbconn}/images, and loaded from there when buildah's
# storage no longer has it. Each image is then checked: user, entrypoint, and every file it
# holds (the binary, the libraries it loads, the distroless base files, nothing else).
#
# Env:
#   BBCONN_CACHE              cache root (default ${XDG_CACHE_HOME:-~/.cache}/bbconn)
#   BBCONN_NODE_DIR           where images/*.tar go (default target/node)
#   BBCONN_DEBIAN_MIRROR      Debian mirror for the builder (default http://deb.debian.org/debian)
#   BBCONN_DEBIAN_SECURITY_MIRROR                   (default http://deb.debian.org/debian-security)
#   BBCONN_BUILDAH_ISOLATION  buildah's --isolation for RUN (default oci; chroot also works)
# Needs root (buildah's storage, mmdebstrap), buildah, gcc with static glibc (libc6-dev), apt.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
CACHE_ROOT=${BBCONN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bbconn}
IMAGE_CACHE=$CACHE_ROOT/images
NODE_DIR=${BBCONN_NODE_DIR:-target/node}
case $NODE_DIR in /*) ;; *) NODE_DIR=$REPO_ROOT/$NODE_DIR ;; esac
OUT_DIR=$NODE_DIR/images
MIRROR=${BBCONN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BBCONN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ISOLATION=${BBCONN_BUILDAH_ISOLATION:-oci}

BBCONN_IMAGE=localhost/bbconn:dev
SIM_IMAGE=localhost/bbconn-sim:dev
PAUSE_IMAGE=localhost/pause:bbconn
NONROOT=65532

# What a glibc Rust binary loads on x86-64 (std needs libc, libm and libgcc_s for unwinding):
# the runtime image holds these and no other library; the check below proves each image's
# binaries need exactly them.
BASE_LIBS=(ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1)
# The distroless files besides the libraries (GoogleContainerTools/distroless common/: passwd,
# group, home dirs, tmp, os-release, cacerts; nsswitch.conf from its base). Its tzdata,
# /etc/services and /usr/share/doc are left out: nothing here reads them.
BASE_FILES=(etc etc/group etc/nsswitch.conf etc/os-release etc/passwd etc/ssl etc/ssl/certs
    etc/ssl/certs/ca-certificates.crt home home/nonroot lib lib/x86_64-linux-gnu lib64 root tmp)

ilog() { echo "image: $*" >&2; }
die() {
    ilog "$*"
    exit 1
}

start=$SECONDS
step_start=$SECONDS
timings=()
timed() { # timed NAME: records the time since the previous mark
    timings+=("$1 $((SECONDS - step_start))s")
    step_start=$SECONDS
}

((EUID == 0)) || die "needs root (buildah's system storage, mmdebstrap, chroot)"
command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"
for tool in gcc readelf sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/bbconn-image.XXXXXX")
containers=()
cleanup() {
    local c
    # buildah rm unmounts too; no working container outlives the script.
    for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
    # Archives are written to a temporary name and renamed: an interrupted push leaves no
    # truncated archive, and its temporary file goes here.
    rm -f "$IMAGE_CACHE"/*.tmp.$$ "$OUT_DIR"/*.tmp.$$
    rm -rf "$work"
}
trap cleanup EXIT

# drop_stale REPOSITORY KEEP: removes the other tags of a stand-in (an older recipe's), and
# then the unnamed images (--layers steps, earlier builds) that kept its layers (a builder's are
# ~1 GB): they were built on it and are never used again.
drop_stale() {
    local name dropped=0
    for name in $(buildah images --format '{{.Name}}:{{.Tag}}' --filter "reference=$1"); do
        [[ $name == "$2" ]] && continue
        buildah rmi "$name" >/dev/null 2>&1 || true
        dropped=1
    done
    ((dropped == 0)) || buildah rmi --prune >/dev/null 2>&1 || true
}
# config IMAGE GO-TEMPLATE: a field of the image's configuration.
config() { buildah inspect --type image --format "$2" "$1"; }
# new_container IMAGE: a working container of IMAGE (registered for cleanup), its id in $ctr.
new_container() {
    ctr=$(buildah from --pull=never -q "$1")
    containers+=("$ctr")
}
drop_container() {
    buildah rm "$1" >/dev/null
}

# --- What the Dockerfiles name -------------------------------------------------------------
# from_images FILE: the image of each FROM, first to last (flags and `AS name` left out).
from_images() {
    awk 'toupper($1) == "FROM" { for (i = 2; i <= NF; i++) if ($i !~ /^--/) { print $i; break } }' "$1"
}
mapfile -t froms < <(from_images Dockerfile)
((${#froms[@]} >= 2)) ||
    die "Dockerfile: want a multi-stage build (builder, runtime), got ${#froms[@]} FROM"
BUILDER_REF=${froms[0]}
BASE_REF=${froms[-1]}
mapfile -t sim_froms < <(from_images sim/Dockerfile)
[[ ${sim_froms[*]} == "${froms[*]}" ]] ||
    die "sim/Dockerfile builds FROM ${sim_froms[*]}, the Dockerfile FROM ${froms[*]}: keep them the same"
[[ $BUILDER_REF =~ ^rust:([0-9]+\.[0-9]+(\.[0-9]+)?)-bookworm$ ]] ||
    die "the builder is $BUILDER_REF; this script makes a stand-in for rust:X.Y-bookworm only"
rust_wanted=${BASH_REMATCH[1]}
[[ $BASE_REF == gcr.io/distroless/cc-debian12:nonroot ]] ||
    die "the runtime image is $BASE_REF; this script makes a stand-in for" \
        "gcr.io/distroless/cc-debian12:nonroot only"

sysroot=$(rustc --print sysroot) || die "rustc not found (the builder stand-in copies this machine's toolchain)"
rust_release=$(rustc -vV | sed -n 's/^release: //p')
rust_host=$(rustc -vV | sed -n 's/^host: //p')
[[ $rust_release == "$rust_wanted" || $rust_release == "$rust_wanted".* ]] ||
    die "the Dockerfile builds with $BUILDER_REF, but this machine's rustc is $rust_release ($sysroot)"
[[ $rust_host == x86_64-unknown-linux-gnu ]] || die "rustc's host is $rust_host; want x86_64-unknown-linux-gnu"

# --- rust:1.95-bookworm stand-in -----------------------------------------------------------
# A Debian bookworm minbase with what cargo needs to link (gcc, libc6-dev) and to fetch crates
# (ca-certificates), and the toolchain laid out as the official image has it (rustup's
# RUSTUP_HOME and CARGO_HOME, cargo's bin first on PATH; cargo, rustc, ... link to the
# toolchain instead of being rustup proxies). Docs, man pages and locales are not installed;
# neither are the toolchain's share/ (docs) and rust-src.
make_builder() {
    local mnt tc=/usr/local/rustup/toolchains/$rust_release-$rust_host f
    if ! command -v mmdebstrap >/dev/null; then
        ilog "installing mmdebstrap (apt)"
        # A fresh machine may have no package lists yet.
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap)
        "${apt[@]}" >&2 || { apt-get update -q >&2 && "${apt[@]}" >&2; }
    fi
    new_container scratch
    mnt=$(buildah mount "$ctr")
    ilog "bootstrapping Debian bookworm (gcc, libc6-dev) from $MIRROR"
    nice -n 19 mmdebstrap --mode=root --variant=minbase --include=gcc,libc6-dev,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        bookworm "$mnt" "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
        "deb $SECURITY_MIRROR bookworm-security main" >&2
    ilog "adding Rust $rust_release from $sysroot"
    mkdir -p "$mnt$tc" "$mnt/usr/local/cargo/bin"
    tar -C "$sysroot" --exclude=./lib/rustlib/src -cf - ./bin ./lib | tar -C "$mnt$tc" -xf -
    for f in "$mnt$tc"/bin/*; do
        ln -s "$tc/bin/${f##*/}" "$mnt/usr/local/cargo/bin/${f##*/}"
    done
    buildah umount "$ctr" >/dev/null
    buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
        --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env RUST_VERSION="$rust_release" --cmd bash \
        --label "bbconn.dev/stands-in-for=$BUILDER_REF" "$ctr"
    buildah commit -q "$ctr" "$BUILDER_IMAGE" >/dev/null
    drop_container "$ctr"
}
# Keyed by the recipe (this function's text) and the toolchain, not by the day's Debian
# packages: like a pulled rust:1.95-bookworm, it is made once and kept.
builder_key=$({ declare -f make_builder; rustc -vV; cat "$sysroot"/lib/rustlib/manifest-*; } |
    sha256sum | cut -c1-16)
BUILDER_IMAGE=localhost/bbconn-builder:rust-$rust_release-bookworm-$builder_key
builder_archive=$IMAGE_CACHE/builder-rust-$rust_release-bookworm-$builder_key.tar

if buildah inspect --type image "$BUILDER_IMAGE" >/dev/null 2>&1; then
    ilog "builder: $BUILDER_IMAGE (in buildah's storage)"
elif [[ -s $builder_archive ]]; then
    ilog "builder: loading $BUILDER_IMAGE from $builder_archive"
    id=$(buildah pull -q "oci-archive:$builder_archive")
    buildah tag "$id" "$BUILDER_IMAGE"
else
    ilog "builder: making $BUILDER_IMAGE (cached afterwards in $IMAGE_CACHE)"
    make_builder
    drop_stale localhost/bbconn-builder "$BUILDER_IMAGE"
fi
# The archive is (re)written whenever it is missing, so a cache root kept alone (CI) has it.
if [[ ! -s $builder_archive ]]; then
    mkdir -p "$IMAGE_CACHE"
    # zstd: several times faster to write and read than gzip, for a ~1 GB image.
    buildah push -q --compression-format zstd "$BUILDER_IMAGE" \
        "oci-archive:$builder_archive.tmp.$$:$BUILDER_IMAGE"
    mv -f "$builder_archive.tmp.$$" "$builder_archive"
    # Builders of an older recipe or toolchain are not used again.
    for f in "$IMAGE_CACHE"/builder-*.tar; do
        [[ $f == "$builder_archive" ]] || rm -f "$f"
    done
fi
timed "builder"

# --- gcr.io/distroless/cc-debian12:nonroot stand-in ----------------------------------------
# From scratch, with Debian 12's glibc 2.36 libraries, libgcc_s and CA bundle (taken from the
# builder's bookworm: the packages cc-debian12 is made of, and the glibc the binaries are linked
# against; not this machine's, whose trust store may hold local CAs), and distroless's users,
# groups, directories and config (user 65532, workdir /home/nonroot, PATH, SSL_CERT_FILE).
# Seconds to make, so it is not archived.
make_base() {
    local mnt from from_ctr lib
    new_container "$BUILDER_IMAGE"
    from_ctr=$ctr
    from=$(buildah mount "$from_ctr")
    new_container scratch
    mnt=$(buildah mount "$ctr")
    install -d -m 0755 "$mnt/etc/ssl/certs" "$mnt/lib/x86_64-linux-gnu" "$mnt/lib64" "$mnt/home"
    install -d -m 0700 "$mnt/root"
    install -d -m 0700 -o "$NONROOT" -g "$NONROOT" "$mnt/home/nonroot"
    install -d -m 1777 "$mnt/tmp"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        "nonroot:x:$NONROOT:$NONROOT:nonroot:/home/nonroot:/sbin/nologin" > "$mnt/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' "nonroot:x:$NONROOT:" \
        > "$mnt/etc/group"
    # glibc reads it for getaddrinfo: /etc/hosts first, then DNS, as distroless configures.
    printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' \
        'networks: files' 'protocols: files' 'services: files' > "$mnt/etc/nsswitch.conf"
    printf '%s\n' 'PRETTY_NAME="Distroless"' 'NAME="Debian GNU/Linux"' 'ID="debian"' \
        'VERSION_ID="12"' 'VERSION="Debian GNU/Linux 12 (bookworm)"' \
        'HOME_URL="https://github.com/GoogleContainerTools/distroless"' > "$mnt/etc/os-release"
    chmod 0644 "$mnt"/etc/{passwd,group,nsswitch.conf,os-release}
    install -m 0644 "$from/etc/ssl/certs/ca-certificates.crt" "$mnt/etc/ssl/certs/ca-certificates.crt"
    for lib in "${BASE_LIBS[@]}"; do
        # cp -L: bookworm's /lib is a link to usr/lib; distroless has the files in /lib.
        cp -L --preserve=mode "$from/lib/x86_64-linux-gnu/$lib" "$mnt/lib/x86_64-linux-gnu/$lib"
    done
    ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$mnt/lib64/ld-linux-x86-64.so.2"
    buildah config --user "$NONROOT" --workingdir /home/nonroot \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --label "bbconn.dev/stands-in-for=$BASE_REF" "$ctr"
    buildah commit -q "$ctr" "$BASE_IMAGE" >/dev/null
    drop_container "$ctr"
    drop_container "$from_ctr"
}
# Keyed by the recipe and the builder's content (its image id), which the files come from.
base_key=$({ declare -f make_base; config "$BUILDER_IMAGE" '{{.FromImageID}}'; } | sha256sum | cut -c1-16)
BASE_IMAGE=localhost/bbconn-distroless-cc-debian12:nonroot-$base_key
if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    ilog "runtime base: $BASE_IMAGE (in buildah's storage)"
else
    ilog "runtime base: making $BASE_IMAGE"
    make_base
    drop_stale localhost/bbconn-distroless-cc-debian12 "$BASE_IMAGE"
fi
timed "runtime base"

ilog "substituting (named build contexts):"
ilog "  FROM $BUILDER_REF  <- $BUILDER_IMAGE"
ilog "  FROM $BASE_REF  <- $BASE_IMAGE"

# --- The images ----------------------------------------------------------------------------
# --network host: cargo fetches crates.io without buildah making a bridge on this host's
# network. --layers: an unchanged context reuses every step.
build=(nice -n 19 buildah build --pull=never --layers --force-rm --network host --isolation "$ISOLATION"
    --build-context "$BUILDER_REF=container-image://$BUILDER_IMAGE"
    --build-context "$BASE_REF=container-image://$BASE_IMAGE")
# The host's CA bundle is bind-mounted over the builder's for RUN only: cargo reaches crates.io
# through this machine's network, so it trusts what this machine trusts (a TLS-inspecting
# egress proxy's CA, say), and neither the cached builder nor an image keeps it.
[[ -s /etc/ssl/certs/ca-certificates.crt ]] &&
    build+=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
# The Dockerfiles' cache mounts (cargo's registry and /src/target: the compiled dependencies,
# minutes to remake) are directories buildah keeps under $TMPDIR/buildah-cache; with TMPDIR in
# the cache root they survive with it (a CI that keeps ~/.cache/bbconn keeps them), and the
# simulator's build reuses what bbconn's compiled.
mkdir -p "$IMAGE_CACHE/buildah-tmp"
build=(env TMPDIR="$IMAGE_CACHE/buildah-tmp" "${build[@]}")
ilog "building $BBCONN_IMAGE from Dockerfile"
"${build[@]}" -f Dockerfile -t "$BBCONN_IMAGE" . >&2
timed "bbconn"
ilog "building $SIM_IMAGE from sim/Dockerfile"
"${build[@]}" -f sim/Dockerfile -t "$SIM_IMAGE" . >&2
timed "bbconn-sim"

# pause.c, built here (gcc -static: the image holds this file alone), from its own Dockerfile.
mkdir -p "$work/pause"
gcc -static -Os -s -Wall -Wextra -Werror -o "$work/pause/pause" tests/node/image/pause.c
ilog "building $PAUSE_IMAGE from tests/node/image/pause.Dockerfile"
nice -n 19 buildah build --pull=never --layers --force-rm --network none \
    -f tests/node/image/pause.Dockerfile -t "$PAUSE_IMAGE" "$work/pause" >&2
timed "pause"

# --- Checks --------------------------------------------------------------------------------
# list_rootfs DIR: every path under DIR (relative), one a line, sorted.
list_rootfs() {
    (cd "$1" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort)
}
# list_long DIR: the image's contents list: mode, owner, size, path (and a symlink's target).
list_long() {
    (cd "$1" && find . -mindepth 1 -printf '  %M %5U:%-5G %9s  /%P %l\n' | LC_ALL=C sort -k4)
}
# resolve ROOT PATH: PATH (absolute, inside ROOT) with its symlinks followed inside ROOT.
resolve() {
    local root=$1 path=$2 n target
    for ((n = 0; n < 16; n++)); do
        [[ -L $root$path ]] || { echo "$path"; return; }
        target=$(readlink "$root$path")
        [[ $target == /* ]] || target=${path%/*}/$target
        path=$target
    done
    return 1
}
# closure ROOT FILE: the paths (relative to ROOT) loading FILE opens: its program interpreter
# and its NEEDED libraries, recursively, each found in the library directories glibc searches
# on Debian (no ld.so.cache in the image), symlinks and their targets both.
closure() {
    local root=$1 queue=("$2") seen=" " f lib dir found interp real
    while ((${#queue[@]})); do
        f=${queue[0]}
        queue=("${queue[@]:1}")
        interp=$(readelf -lW "$root$f" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
        if [[ -n $interp && $seen != *" $interp "* ]]; then
            if ! real=$(resolve "$root" "$interp") || [[ ! -f $root$real ]]; then
                ilog "${f#/}: interpreter $interp is not in the image"
                return 1
            fi
            seen+="$interp $real "
        fi
        for lib in $(readelf -dW "$root$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
            found=
            for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib; do
                [[ -e $root$dir/$lib ]] && { found=$dir/$lib; break; }
            done
            [[ -n $found ]] || { ilog "${f#/} needs $lib, which the image does not have"; return 1; }
            if ! real=$(resolve "$root" "$found") || [[ ! -f $root$real ]]; then
                ilog "$found is a broken link in the image"
                return 1
            fi
            [[ $seen == *" $found "* ]] && continue
            seen+="$found $real "
            queue+=("$real")
        done
    done
    for f in $seen; do echo "${f#/}"; done | LC_ALL=C sort -u
}
fail=0
bad() {
    ilog "CHECK FAILED: $*"
    fail=1
}

# check_distroless IMAGE BINARY USER ENTRYPOINT [CMD] (as Go prints them: [/bbconn]): the image
# is the base plus BINARY; every library in it is one BINARY loads and every one BINARY loads is
# in it; the rest is exactly the distroless base files; it runs as USER with ENTRYPOINT.
check_distroless() {
    local image=$1 bin=$2 user=$3 entry=$4 cmd=${5:-} mnt got want extra libs
    echo "--- $image: $(config "$image" '{{.FromImageID}}' | cut -c1-12)," \
        "user $(config "$image" '{{.OCIv1.Config.User}}')," \
        "entrypoint $(config "$image" '{{.OCIv1.Config.Entrypoint}}')," \
        "cmd $(config "$image" '{{.OCIv1.Config.Cmd}}')"
    [[ $(config "$image" '{{.OCIv1.Config.User}}') == "$user" ]] || bad "$image: user is not $user"
    [[ $(config "$image" '{{.OCIv1.Config.Entrypoint}}') == "$entry" ]] ||
        bad "$image: entrypoint is not $entry"
    [[ -z $cmd || $(config "$image" '{{.OCIv1.Config.Cmd}}') == "$cmd" ]] || bad "$image: cmd is not $cmd"
    new_container "$image"
    mnt=$(buildah mount "$ctr")
    echo "$image holds:"
    list_long "$mnt"
    got=$(list_rootfs "$mnt")
    libs=$(closure "$mnt" "/$bin") || { bad "$image: /$bin cannot be loaded from the image"; libs=; }
    want=$(printf '%s\n' "$bin" "${BASE_FILES[@]}" "$libs" | sed '/^$/d' | LC_ALL=C sort -u)
    extra=$(LC_ALL=C comm -23 <(echo "$got") <(echo "$want"))
    [[ -z $extra ]] ||
        bad "$image holds what /$bin does not load and distroless does not have: ${extra//$'\n'/ }"
    extra=$(LC_ALL=C comm -13 <(echo "$got") <(echo "$want"))
    [[ -z $extra ]] || bad "$image lacks: ${extra//$'\n'/ }"
    echo "  /$bin loads: ${libs//$'\n'/ }"
    [[ $(stat -c '%a %u:%g' "$mnt/tmp") == "1777 0:0" ]] || bad "$image: /tmp is not 1777 root"
    [[ $(stat -c '%a %u:%g' "$mnt/home/nonroot") == "700 $NONROOT:$NONROOT" ]] ||
        bad "$image: /home/nonroot is not 0700 $NONROOT"
    [[ $(stat -c '%u:%g' "$mnt/$bin") == 0:0 && -x $mnt/$bin ]] ||
        bad "$image: /$bin is not an executable owned by root"
    # It starts from the image alone, as the image's user (the loader and libraries inside).
    chroot --userspec="$user" "$mnt" "/$bin" --version >/dev/null 2>"$work/run.err" ||
        bad "$image: /$bin --version fails as $user in the image: $(head -c 500 "$work/run.err")"
    # The binary as built by the Dockerfile, for the checks that run it on the machine (make
    # test: the Dockerfile's glibc check, and the demo kstatus reads): one release build, not two.
    mkdir -p "$OUT_DIR/bin"
    cp -p "$mnt/$bin" "$OUT_DIR/bin/$bin.tmp.$$" && mv -f "$OUT_DIR/bin/$bin.tmp.$$" "$OUT_DIR/bin/$bin"
    drop_container "$ctr"
}
check_pause() {
    local image=$PAUSE_IMAGE mnt
    echo "--- $image: $(config "$image" '{{.FromImageID}}' | cut -c1-12)," \
        "user $(config "$image" '{{.OCIv1.Config.User}}')," \
        "entrypoint $(config "$image" '{{.OCIv1.Config.Entrypoint}}')"
    [[ $(config "$image" '{{.OCIv1.Config.User}}') == 65535:65535 ]] || bad "$image: user is not 65535:65535"
    [[ $(config "$image" '{{.OCIv1.Config.Entrypoint}}') == '[/pause]' ]] ||
        bad "$image: entrypoint is not [/pause]"
    new_container "$image"
    mnt=$(buildah mount "$ctr")
    echo "$image holds:"
    list_long "$mnt"
    [[ $(list_rootfs "$mnt") == pause ]] || bad "$image holds more than /pause"
    readelf -lW "$mnt/pause" | grep -q 'program interpreter' && bad "$image: /pause is not static"
    chroot --userspec=65535:65535 "$mnt" /pause -v >/dev/null || bad "$image: /pause -v fails"
    drop_container "$ctr"
}
check_distroless "$BBCONN_IMAGE" bbconn "$NONROOT:$NONROOT" '[/bbconn]' '[run]'
check_distroless "$SIM_IMAGE" bbconn-sim "$NONROOT:$NONROOT" '[/bbconn-sim]'
check_pause
timed "checks"
((fail == 0)) || die "the images are not what they must be (above)"

# --- OCI archives --------------------------------------------------------------------------
# The archive's index names the image (org.opencontainers.image.ref.name), which is the name
# `ctr images import` gives it. Rewritten only when the image changed.
mkdir -p "$OUT_DIR"
for pair in "bbconn $BBCONN_IMAGE" "bbconn-sim $SIM_IMAGE" "pause $PAUSE_IMAGE"; do
    name=${pair%% *} image=${pair#* }
    id=$(config "$image" '{{.FromImageID}}')
    tar=$OUT_DIR/$name.tar
    if [[ -s $tar && $(cat "$tar.id" 2>/dev/null) == "$id" ]]; then
        continue
    fi
    rm -f "$tar.id"
    buildah push -q "$image" "oci-archive:$tar.tmp.$$:$image"
    mv -f "$tar.tmp.$$" "$tar"
    echo "$id" > "$tar.id"
done
for pair in "bbconn $BBCONN_IMAGE" "bbconn-sim $SIM_IMAGE" "pause $PAUSE_IMAGE"; do
    name=${pair%% *} image=${pair#* }
    ref=$(tar -xOf "$OUT_DIR/$name.tar" index.json |
        sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p')
    [[ $ref == "$image" ]] ||
        die "$OUT_DIR/$name.tar names '$ref', not $image (org.opencontainers.image.ref.name)"
done
timed "archives"

echo "=== images"
echo "substituted: FROM $BUILDER_REF <- $BUILDER_IMAGE"
echo "substituted: FROM $BASE_REF <- $BASE_IMAGE"
for image in "$BBCONN_IMAGE" "$SIM_IMAGE" "$PAUSE_IMAGE"; do
    printf '%-28s %s  %s\n' "$image" "$(config "$image" '{{.FromImageID}}' | cut -c1-12)" \
        "$(buildah images --format '{{.Size}}' "$image")"
done
for name in bbconn bbconn-sim pause; do
    printf '%-28s %s\n' "$OUT_DIR/$name.tar" "$(du -h "$OUT_DIR/$name.tar" | cut -f1)"
done
echo "image: ${timings[*]}; total $((SECONDS - start))s"
