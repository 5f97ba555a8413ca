#!/usr/bin/env bash
# Builds a statically linked gyre on the host and the `gyre` image around it.
#
# Usage: deploy/docker/build.sh [TAG]        (TAG defaults to gyre:latest)
# Environment: CARGO_TARGET_DIR (as cargo reads it), GYRE_IMAGE (the tag).
# The image is also tagged gyre:<version> (the workspace version), the tag
# the Kubernetes manifests name.
set -euo pipefail

TAG=${1:-${GYRE_IMAGE:-gyre:latest}}
TARGET=x86_64-unknown-linux-gnu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# glibc, linked statically (crt-static). getrandom goes straight to the
# getrandom(2) syscall. --target keeps these flags off build scripts and
# proc macros, which must stay dynamic.
(
    cd "$ROOT"
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
        cargo build --release --locked -p gyre --target "$TARGET"
)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR = /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
BIN=$TARGET_DIR/$TARGET/release/gyre

# Refuse a binary that would need a loader or shared libraries in the image.
headers=$(readelf -lW "$BIN")
dynamic=$(readelf -dW "$BIN")
if [[ $headers == *INTERP* || $dynamic == *NEEDED* ]]; then
    printf '%s\n' "$dynamic" | grep NEEDED >&2 || true
    echo "error: $BIN is not statically linked" >&2
    exit 1
fi

CONTEXT=$(mktemp -d)
trap 'rm -rf "$CONTEXT"' EXIT
cp "$HERE/Dockerfile" "$BIN" "$CONTEXT/"
mkdir "$CONTEXT/data" "$CONTEXT/certs"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
docker build -t "$TAG" -t "gyre:$VERSION" "$CONTEXT"
docker run --rm "$TAG" --version
