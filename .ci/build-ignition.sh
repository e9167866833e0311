#!/usr/bin/env bash
# Build (once) and cache Ignition, the first-boot provisioner of Azure Container Linux,
# Flatcar and Fedora CoreOS, from its Go module (github.com/coreos/ignition/v2). The project's
# Ignition test image (tests/fixtures/ignition_image.py) runs it in its initramfs. Idempotent:
# a cached binary is reused as is.
#
# cgo is needed (Ignition reads block devices through libblkid and looks users up with
# getpwnam in the target root), so this builds with CGO_ENABLED=1 against Debian's
# libblkid-dev; the binary runs on the Debian 12 test image built on this same release.
#
#   AZL_TESTBED_CACHE        cache root (default /var/cache/azl-testbed); the binary lands in
#                            $AZL_TESTBED_CACHE/bin/ignition-<version>, linked as .../ignition
#   AZL_IGNITION_VERSION     github.com/coreos/ignition/v2 version (default v2.24.0)
#
# Prints AZL_IGNITION=<path> on stdout (sourceable); progress on stderr.
set -euo pipefail

CACHE=${AZL_TESTBED_CACHE:-/var/cache/azl-testbed}
VERSION=${AZL_IGNITION_VERSION:-v2.24.0}
BIN=$CACHE/bin
OUT=$BIN/ignition-$VERSION
mkdir -p "$BIN"

log() { printf '[build-ignition] %s\n' "$*" >&2; }

# Its own lock: a long test bed build by another caller does not hold this one up.
exec 9>"$CACHE/.lock-ignition"
flock 9

if [[ ! -x $OUT ]]; then
    if ! command -v go >/dev/null; then
        log "go not found: Ignition is built from its Go module (install Go >= 1.24)"
        exit 1
    fi
    if [[ ! -e /usr/include/blkid/blkid.h ]]; then
        log "blkid.h not found: install Debian's libblkid-dev (Ignition needs cgo and libblkid)"
        exit 1
    fi
    src=$CACHE/src/ignition-$VERSION
    mkdir -p "$src"
    log "building ignition $VERSION into $OUT"
    start=$(date +%s)
    # the version Ignition reports (-version, its journal lines), as its own build script sets it
    (cd "$src" && GOBIN=$src/gobin CGO_ENABLED=1 GOFLAGS=-mod=mod \
        go install -trimpath \
        -ldflags="-s -w -X github.com/coreos/ignition/v2/internal/version.Raw=${VERSION#v}" \
        "github.com/coreos/ignition/v2/internal@$VERSION")
    mv "$src/gobin/internal" "$OUT"  # Ignition's main package is .../internal
    log "ignition built in $(($(date +%s) - start)) s"
fi
ln -sf "$OUT" "$BIN/ignition"
echo "AZL_IGNITION=$OUT"
