#!/usr/bin/env bash
# Build (once) and cache the cluster test bed binaries: kube-apiserver, kube-controller-manager,
# kubelet and kwok from their Go modules, etcd from its module (Debian's etcd-server as the
# fallback), and containerd (with its runc shim and ctr) from github.com/containerd/containerd/v2
# for the bed's real nodes. Idempotent: a cached binary is reused as is.
#
#   AZL_TESTBED_CACHE   cache root (default /var/cache/azl-testbed); binaries land in
#                       $AZL_TESTBED_CACHE/bin/<name>-<version>
#   AZL_K8S_VERSION     k8s.io/kubernetes version (default v1.37.2; staging modules pinned
#                       to the matching v0.X.Y)
#   AZL_KWOK_VERSION    sigs.k8s.io/kwok version (default v0.8.0)
#   AZL_CONTAINERD_VERSION  github.com/containerd/containerd/v2 version (default v2.4.2)
#   KUBEBUILDER_ASSETS  when set, the kube-apiserver, kube-controller-manager and etcd found
#                       there are used and not built
#
# Prints the resolved paths as KEY=VALUE lines (sourceable) on stdout; progress on stderr.
set -euo pipefail

CACHE=${AZL_TESTBED_CACHE:-/var/cache/azl-testbed}
K8S_VERSION=${AZL_K8S_VERSION:-v1.37.2}
KWOK_VERSION=${AZL_KWOK_VERSION:-v0.8.0}
BIN=$CACHE/bin
mkdir -p "$BIN"
export GOFLAGS=${GOFLAGS:--mod=mod}
export CGO_ENABLED=0

log() { printf '[build-testbed] %s\n' "$*" >&2; }

# Serialise concurrent callers (CI and a developer's `azl lab cluster up`).
exec 9>"$CACHE/.lock"
flock 9

timed() { # name, command...: runs the command and logs its wall time
    local name=$1 start end
    shift
    start=$(date +%s)
    "$@"
    end=$(date +%s)
    log "$name built in $((end - start)) s"
}

prepare_k8s_module() { # the module that builds kube-apiserver and kube-controller-manager
    local minor=${K8S_VERSION#v1.}
    local staging=v0.$minor
    local src=$CACHE/src/kubernetes-$K8S_VERSION
    mkdir -p "$src"
    if [[ ! -f $src/.tidy-kubelet ]]; then
        log "preparing k8s.io/kubernetes $K8S_VERSION (staging modules pinned to $staging) in $src"
        # k8s.io/kubernetes requires its staging modules at v0.0.0 with replace directives
        # to ./staging; a consumer module must pin each of them to the published v0.X.Y.
        go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >"$src/kubernetes.json"
        local gomod
        gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' "$src/kubernetes.json")
        {
            echo "module azl.local/testbed/kubernetes"
            echo
            echo "go 1.26.0"
            echo
            echo "require k8s.io/kubernetes $K8S_VERSION"
            echo
            grep -E '=> \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
        } >"$src/go.mod"
        cat >"$src/tools.go" <<'EOF2'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOF2
        (cd "$src" && go mod tidy >&2)
        touch "$src/.tidy-kubelet"
    fi
    echo "$src"
}

build_k8s_cmd() { # name
    local name=$1
    local out=$BIN/$name-$K8S_VERSION
    if [[ -x $out ]]; then echo "$out"; return; fi
    local src
    src=$(prepare_k8s_module)
    log "building $name $K8S_VERSION"
    # the version the binary reports (/version, a node's kubeletVersion), as a release build sets it
    local minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    local v=k8s.io/component-base/version
    local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
    (cd "$src" && timed "$name" go build -trimpath -ldflags="$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name")
    mv "$out.tmp" "$out"
    echo "$out"
}

build_kwok() {
    local out=$BIN/kwok-$KWOK_VERSION
    if [[ -x $out ]]; then echo "$out"; return; fi
    local src=$CACHE/src/kwok-$KWOK_VERSION
    mkdir -p "$src"
    log "building kwok $KWOK_VERSION"
    (cd "$src" && GOBIN=$src/gobin timed kwok go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
    mv "$src/gobin/kwok" "$out"
    echo "$out"
}

CONTAINERD_VERSION=${AZL_CONTAINERD_VERSION:-v2.4.2}

build_containerd() { # containerd, containerd-shim-runc-v2 and ctr into one directory
    local out=$BIN/containerd-$CONTAINERD_VERSION
    if [[ -x $out/ctr ]]; then echo "$out"; return; fi
    local src=$CACHE/src/containerd-$CONTAINERD_VERSION
    mkdir -p "$src" "$out.tmp"
    printf 'module azl.local/testbed/containerd\n\ngo 1.26.0\n' >"$src/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n' >"$src/tools.go"
    local cmd
    for cmd in containerd containerd-shim-runc-v2 ctr; do
        printf '\t_ "github.com/containerd/containerd/v2/cmd/%s"\n' "$cmd" >>"$src/tools.go"
    done
    printf ')\n' >>"$src/tools.go"
    (cd "$src" && go get "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" >&2 && go mod tidy >&2)
    for cmd in containerd containerd-shim-runc-v2 ctr; do
        # no_btrfs: the btrfs snapshotter needs cgo; the nodes use overlayfs
        # the version a kubelet reports (containerRuntimeVersion), as a release build sets it
        (cd "$src" && timed "$cmd" go build -trimpath -tags no_btrfs \
            -ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}" \
            -o "$out.tmp/$cmd" "github.com/containerd/containerd/v2/cmd/$cmd")
    done
    rm -rf "$out"
    mv "$out.tmp" "$out"
    echo "$out"
}

SNAPSHOTTER_VERSION=${AZL_SNAPSHOTTER_VERSION:-v8.7.0}

stage_crds() { # the CRD manifests the bed installs: kwok's Exec, the VolumeSnapshot API
    local out=$CACHE/crds
    if [[ -f $out/.done-$KWOK_VERSION-$SNAPSHOTTER_VERSION ]]; then echo "$out"; return; fi
    mkdir -p "$out"
    local kwok snap
    kwok=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    snap=$(go mod download -json "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    cp "$kwok/kustomize/crd/bases/kwok.x-k8s.io_execs.yaml" "$out/"
    cp "$snap"/config/crd/snapshot.storage.k8s.io_*.yaml "$out/"
    chmod 644 "$out"/*.yaml
    touch "$out/.done-$KWOK_VERSION-$SNAPSHOTTER_VERSION"
    echo "$out"
}

ETCD_VERSION=${AZL_ETCD_VERSION:-v3.7.0}

find_etcd() {
    # kube-apiserver needs etcd >= 3.4.31 / 3.5.13 for watch progress requests; Debian 12
    # ships 3.4.23, so etcd is built from its module (go.etcd.io/etcd/server/v3) and
    # Debian's is only the fallback when that build fails.
    if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/etcd ]]; then
        echo "$KUBEBUILDER_ASSETS/etcd"; return
    fi
    local out=$BIN/etcd-$ETCD_VERSION
    if [[ -x $out ]]; then echo "$out"; return; fi
    local src=$CACHE/src/etcd-$ETCD_VERSION
    mkdir -p "$src"
    printf 'module azl.local/testbed/etcd\n\ngo 1.26.0\n' >"$src/go.mod"
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$src/main.go"
    if (cd "$src" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 \
        && timed etcd go build -trimpath -ldflags='-s -w' -o "$out.tmp" .); then
        mv "$out.tmp" "$out"
        echo "$out"; return
    fi
    log "etcd $ETCD_VERSION did not build; falling back to Debian's etcd-server"
    if ! command -v etcd >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >&2
    fi
    command -v etcd
}

if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-apiserver ]]; then
    APISERVER=$KUBEBUILDER_ASSETS/kube-apiserver
else
    APISERVER=$(build_k8s_cmd kube-apiserver)
fi
if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-controller-manager ]]; then
    CONTROLLER_MANAGER=$KUBEBUILDER_ASSETS/kube-controller-manager
else
    CONTROLLER_MANAGER=$(build_k8s_cmd kube-controller-manager)
fi
KUBELET=$(build_k8s_cmd kubelet)
CONTAINERD=$(build_containerd)
KWOK=$(build_kwok)
ETCD=$(find_etcd)
CRDS=$(stage_crds)

# Stable names for callers that do not care about versions.
ln -sf "$APISERVER" "$BIN/kube-apiserver"
ln -sf "$CONTROLLER_MANAGER" "$BIN/kube-controller-manager"
ln -sf "$KWOK" "$BIN/kwok"
ln -sf "$KUBELET" "$BIN/kubelet"
ln -sfn "$CONTAINERD" "$BIN/containerd"
ln -sf "$ETCD" "$BIN/etcd"

echo "AZL_TESTBED_KUBE_APISERVER=$APISERVER"
echo "AZL_TESTBED_KUBE_CONTROLLER_MANAGER=$CONTROLLER_MANAGER"
echo "AZL_TESTBED_KWOK=$KWOK"
echo "AZL_TESTBED_KUBELET=$KUBELET"
echo "AZL_TESTBED_CONTAINERD=$CONTAINERD"
echo "AZL_TESTBED_ETCD=$ETCD"
echo "AZL_TESTBED_CRDS=$CRDS"
