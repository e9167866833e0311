#!/usr/bin/env bash
# Build (once) and cache actionlint, the GitHub Actions workflow checker the project's tests
# run on its shipped workflows (tests/unit/test_workflows.py). Idempotent: a cached binary is
# reused as is.
#
#   AZL_TESTBED_CACHE        cache root (default /var/cache/azl-testbed); the binary lands in
#                            $AZL_TESTBED_CACHE/bin/actionlint-<version>, linked as .../actionlint
#   AZL_ACTIONLINT_VERSION   github.com/rhysd/actionlint version (default v1.7.12)
#
# Prints AZL_ACTIONLINT=<path> on stdout (sourceable); progress on stderr.
set -euo pipefail

CACHE=${AZL_TESTBED_CACHE:-/var/cache/azl-testbed}
VERSION=${AZL_ACTIONLINT_VERSION:-v1.7.12}
BIN=$CACHE/bin
OUT=$BIN/actionlint-$VERSION
mkdir -p "$BIN"

log() { printf '[build-actionlint] %s\n' "$*" >&2; }

# Its own lock: a long test bed build by another caller does not hold this one up.
exec 9>"$CACHE/.lock-actionlint"
flock 9

if [[ ! -x $OUT ]]; then
    if ! command -v go >/dev/null; then
        log "go not found: actionlint is built from its Go module (install Go >= 1.24)"
        exit 1
    fi
    src=$CACHE/src/actionlint-$VERSION
    mkdir -p "$src"
    log "building actionlint $VERSION into $OUT"
    start=$(date +%s)
    (cd "$src" && GOBIN=$src/gobin CGO_ENABLED=0 GOFLAGS=-mod=mod \
        go install -trimpath -ldflags='-s -w' "github.com/rhysd/actionlint/cmd/actionlint@$VERSION")
    mv "$src/gobin/actionlint" "$OUT"
    log "actionlint built in $(($(date +%s) - start)) s"
fi
ln -sf "$OUT" "$BIN/actionlint"
echo "AZL_ACTIONLINT=$OUT"
