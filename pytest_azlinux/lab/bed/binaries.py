"""Where the test bed's programs come from: the build cache, KUBEBUILDER_ASSETS, or a variable.

``.ci/build-testbed.sh`` builds etcd, kube-apiserver, kube-controller-manager and kwok from
their Go modules and caches them (with the snapshot CRDs) under ``$AZL_TESTBED_CACHE``
(default /var/cache/azl-testbed). A user who already has envtest assets sets
``KUBEBUILDER_ASSETS``; any single program can be pointed at with ``AZL_TESTBED_<NAME>``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ...errors import BedError

CACHE = Path(os.environ.get("AZL_TESTBED_CACHE", "/var/cache/azl-testbed"))
BUILD_SCRIPT = Path(__file__).resolve().parents[3] / ".ci" / "build-testbed.sh"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kwok")


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kwok: Path
    crds: Path  # a directory of CustomResourceDefinition YAML files


def find_binaries(build: bool = False) -> Binaries:
    """Locate the test-bed binaries; with ``build``, run the build script when one is missing."""
    found = _lookup()
    missing = [k for k, v in found.items() if v is None]
    if missing and build and BUILD_SCRIPT.exists():
        _run_build_script()
        found = _lookup()
        missing = [k for k, v in found.items() if v is None]
    if missing:
        raise BedError(
            f"cluster test bed: missing {', '.join(missing)}; run {BUILD_SCRIPT} "
            f"(caches under {CACHE}/bin) or set KUBEBUILDER_ASSETS"
        )
    return Binaries(**{k: v for k, v in found.items() if v is not None})


@dataclass(frozen=True)
class NodeBinaries:
    """What a real node runs that this machine provides (the rest comes from Debian)."""

    kubelet: Path
    containerd: Path  # a directory: containerd, containerd-shim-runc-v2, ctr
    cni: Path  # Debian's containernetworking-plugins (bridge, host-local, loopback)


NODE_CNI_PLUGINS = ("bridge", "host-local", "loopback")  # what the nodes' conflist uses
CNI_DIR = Path("/usr/lib/cni")


def find_node_binaries(build: bool = False) -> NodeBinaries:
    """The real nodes' kubelet and containerd (built by the build script) and CNI plugins."""
    def lookup() -> tuple[Path | None, Path | None]:
        kubelet = Path(os.environ.get("AZL_TESTBED_KUBELET") or CACHE / "bin/kubelet")
        containerd = Path(os.environ.get("AZL_TESTBED_CONTAINERD") or CACHE / "bin/containerd")
        return (kubelet if kubelet.is_file() else None,
                containerd if (containerd / "ctr").is_file() else None)

    kubelet, containerd = lookup()
    if (kubelet is None or containerd is None) and build and BUILD_SCRIPT.exists():
        _run_build_script()
        kubelet, containerd = lookup()
    if kubelet is None or containerd is None:
        raise BedError(f"real nodes: kubelet or containerd missing under {CACHE}/bin; run "
                       f"{BUILD_SCRIPT}")
    missing = [p for p in NODE_CNI_PLUGINS if not (CNI_DIR / p).is_file()]
    if missing:
        raise BedError(f"real nodes: CNI plugins {', '.join(missing)} missing in {CNI_DIR} "
                       "(apt-get install containernetworking-plugins)")
    return NodeBinaries(kubelet=kubelet, containerd=containerd, cni=CNI_DIR)


def _run_build_script() -> None:
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BedError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")


def _lookup() -> dict[str, Path | None]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    out: dict[str, Path | None] = {}
    for name in (*COMPONENTS, "crds"):
        key = name.replace("-", "_")
        candidates = [os.environ.get(f"AZL_TESTBED_{key.upper()}")]
        if assets and name != "kwok":
            candidates.append(str(Path(assets) / name))
        candidates.append(str(CACHE / ("crds" if name == "crds" else f"bin/{name}")))
        if name == "etcd":
            candidates.append(shutil.which("etcd"))
        out[key] = next((Path(c) for c in candidates if c and Path(c).exists()), None)
    return out


def etcd_supports_unsafe_no_fsync(etcd: Path) -> bool:
    """Whether this etcd has ``--unsafe-no-fsync`` (Debian's older etcd does not)."""
    try:
        out = subprocess.run([str(etcd), "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--unsafe-no-fsync" in out.stdout + out.stderr
