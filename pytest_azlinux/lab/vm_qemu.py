"""Running qemu for lab VMs: accelerator choice, the command line, the console log, the pid.

Kept apart from the lab wiring (vm.py) so the command line is testable without booting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .vm_image import VmImage, cache_root

QEMU = "qemu-system-x86_64"
KVM_PROBE_SECONDS = 12.0


def qemu_command(
    *,
    name: str,
    image: VmImage,
    overlay: Path,
    cfg_disk: Path,
    cmdline: Sequence[str],
    tap: str,
    mac: str,
    console_log: Path,
    pidfile: Path,
    accel: str,
    memory_mib: int,
    cpus: int,
    extra: Mapping[str, Path] | None = None,
) -> list[str]:
    """The qemu command that boots one lab VM straight into its kernel (no bootloader)."""
    append = ["console=ttyS0", "root=LABEL=azlroot", "rw", "panic=-1", "azl.cfg=1", *cmdline]
    if image.usr_root_hash:
        append.append(f"azl.usrhash={image.usr_root_hash}")
    cmd = [
        QEMU, "-name", f"azl-vm-{name}", "-accel", accel,
        "-cpu", "host,-arch-capabilities" if accel == "kvm" else "max",
        "-smp", str(cpus), "-m", str(memory_mib),
        "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{console_log}", "-pidfile", str(pidfile), "-daemonize",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", " ".join(append),
        "-object", "rng-random,filename=/dev/urandom,id=rng0",
        "-device", "virtio-rng-pci,rng=rng0",
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={mac}",
    ]  # fmt: skip
    disks: list[tuple[str, Path, str, bool]] = [
        ("azlroot", overlay, "qcow2", False),
        ("azlcfg", cfg_disk, "raw", True),
    ]
    if image.usr and image.usr_hash_tree:
        disks.append(("azlusr", image.usr, "raw", True))
        disks.append(("azlusrhash", image.usr_hash_tree, "raw", True))
    for serial, path in (extra or {}).items():
        disks.append((serial, path, "raw", True))
    for serial, path, fmt, readonly in disks:
        ro = ",readonly=on" if readonly else ""
        cmd += [
            "-drive", f"file={path},if=none,id={serial},format={fmt}{ro}",
            "-device", f"virtio-blk-pci,drive={serial},serial={serial}",
        ]  # fmt: skip
    return cmd


def choose_accel(kernel: Path) -> str:
    """``kvm`` if this kernel really boots under KVM here, else ``tcg``.

    /dev/kvm may exist for a hypervisor that cannot run a stock kernel (kvm_pvm needs a
    PVM-aware guest: qemu starts, the kernel prints nothing). So the probe boots the kernel
    without a root and looks for its banner; the answer is cached per kernel.
    ``AZL_VM_ACCEL=kvm|tcg`` overrides.
    """
    forced = os.environ.get("AZL_VM_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    memo = cache_root() / "accel.json"
    known: dict[str, str] = {}
    if memo.is_file():
        known = json.loads(memo.read_text())
        if str(kernel) in known:
            return known[str(kernel)]
    accel = "kvm" if _kernel_boots_under_kvm(kernel) else "tcg"
    known[str(kernel)] = accel
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps(known, indent=1) + "\n")
    return accel


def _kernel_boots_under_kvm(kernel: Path) -> bool:
    cmd = [
        QEMU, "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "256", "-smp", "1",
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


def console_tail(console_log: Path, lines: int = 25) -> str:
    try:
        text = console_log.read_bytes().decode(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_qemu(pid: int, name: str) -> bool:
    """True if ``pid`` is the qemu of VM ``name`` (not a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"azl-vm-{name}".encode() in argv


def stop_qemu(pid: int, name: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only if the pid is that VM's qemu."""
    if not is_our_qemu(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_our_qemu(pid, name):
            return
        time.sleep(0.1)
    if is_our_qemu(pid, name):
        os.kill(pid, signal.SIGKILL)
