"""KVM or TCG (software emulation) for a VM, and where VM things are cached.

/dev/kvm may exist for a hypervisor that cannot run a stock kernel (kvm_pvm needs a
PVM-aware guest: qemu starts, the kernel prints nothing). So a kernel is probed once: booted
without a root under KVM, its banner looked for; the answer is kept per kernel in
``<cache>/accel.json``. ``AZL_VM_ACCEL=kvm|tcg`` overrides both choices below.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .qemu import KVM_CPU, QEMU

KVM_PROBE_SECONDS = 12.0


def cache_root() -> Path:
    """``$AZL_VM_CACHE``, default /var/cache/azl-lab/vm: built lab images, the probe answers."""
    return Path(os.environ.get("AZL_VM_CACHE", "/var/cache/azl-lab/vm"))


def _forced() -> str | None:
    forced = os.environ.get("AZL_VM_ACCEL")
    return forced if forced in ("kvm", "tcg") else None


def _kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def _memo() -> Path:
    return cache_root() / "accel.json"


def _known() -> dict[str, str]:
    try:
        known = json.loads(_memo().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in known.items()} if isinstance(known, dict) else {}


def choose_accel(kernel: Path) -> str:
    """``kvm`` if this kernel really boots under KVM here (probed once), else ``tcg``."""
    forced = _forced()
    if forced is not None:
        return forced
    if not _kvm_usable():
        return "tcg"
    known = _known()
    if str(kernel) in known:
        return known[str(kernel)]
    accel = "kvm" if _kernel_boots_under_kvm(kernel) else "tcg"
    known[str(kernel)] = accel
    _memo().parent.mkdir(parents=True, exist_ok=True)
    _memo().write_text(json.dumps(known, indent=1) + "\n")
    return accel


def accel_for_unknown_kernel() -> str:
    """For an image whose kernel is not known before it boots: ``kvm`` where some probed
    kernel booted under KVM here, else ``tcg``."""
    forced = _forced()
    if forced is not None:
        return forced
    if not _kvm_usable():
        return "tcg"
    return "kvm" if "kvm" in _known().values() else "tcg"


def _kernel_boots_under_kvm(kernel: Path) -> bool:
    cmd = [
        QEMU, "-accel", "kvm", "-cpu", KVM_CPU, "-m", "256", "-smp", "1",
        "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel",
        str(kernel), "-append", "console=ttyS0 panic=-1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=KVM_PROBE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return b"Linux version" in out
