"""The one qemu command line of every VM here: lab VMs (a kernel booted directly, no
bootloader) and image targets (firmware boots the image's own disk).

Kept apart from the code that starts and waits for VMs so the command line is testable
without booting.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import VmError

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
# Under KVM the host CPU without arch-capabilities: the model the accelerator probe
# (``accel.choose_accel``) boots with, so what was probed is what runs.
KVM_CPU = "host,-arch-capabilities"


@dataclass(frozen=True)
class Drive:
    """A virtio disk. ``serial`` names it in the guest (``/dev/disk/by-id/virtio-<serial>``)."""

    id: str
    path: Path
    format: str
    readonly: bool = False
    serial: str | None = None
    bootindex: int | None = None


@dataclass(frozen=True)
class KernelBoot:
    """Boot a kernel and initramfs straight from files (no firmware, no bootloader)."""

    kernel: Path
    initrd: Path
    append: Sequence[str]


@dataclass(frozen=True)
class Uefi:
    """OVMF: its code (read-only) and this VM's own copy of the variable store."""

    code: Path
    vars: Path


@dataclass(frozen=True)
class QemuVm:
    """What one qemu process runs; qemu's ``-name`` is ``azl-vm-<name>`` (``process``
    finds the VM by it, so a recycled pid is never taken for it)."""

    name: str
    accel: str  # kvm or tcg
    cpus: int
    memory_mib: int
    console_log: Path
    pidfile: Path
    tap: str
    mac: str
    drives: Sequence[Drive]
    kernel: KernelBoot | None = None  # None: the firmware boots the drive with bootindex 0
    uefi: Uefi | None = None  # None: BIOS (SeaBIOS)
    # more arguments, appended: Secure Boot firmware (``firmware.firmware_qemu_args``, which
    # replaces ``uefi``) and a vTPM (``tpm.tpm_qemu_args``)
    extra_args: Sequence[str] = ()


def qemu_command(vm: QemuVm) -> list[str]:
    """qemu daemonized (``-pidfile``), serial console to a file, no display or monitor,
    a hardware RNG, one virtio NIC on ``vm.tap``, then the disks in order."""
    cmd = [
        QEMU, "-name", f"azl-vm-{vm.name}", "-accel", vm.accel,
        "-cpu", KVM_CPU if vm.accel == "kvm" else "max",
        "-smp", str(vm.cpus), "-m", str(vm.memory_mib),
        "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none", "-vga", "none",
        "-serial", f"file:{vm.console_log}", "-pidfile", str(vm.pidfile), "-daemonize",
    ]  # fmt: skip
    if vm.kernel is not None:
        cmd += ["-kernel", str(vm.kernel.kernel), "-initrd", str(vm.kernel.initrd),
                "-append", " ".join(vm.kernel.append)]  # fmt: skip
    cmd += [
        "-object", "rng-random,filename=/dev/urandom,id=rng0",
        "-device", "virtio-rng-pci,rng=rng0",
        "-netdev", f"tap,id=net0,ifname={vm.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={vm.mac}",
    ]  # fmt: skip
    for d in vm.drives:
        ro = ",readonly=on" if d.readonly else ""
        device = f"virtio-blk-pci,drive={d.id}"
        if d.serial is not None:
            device += f",serial={d.serial}"
        if d.bootindex is not None:
            device += f",bootindex={d.bootindex}"
        cmd += ["-drive", f"file={d.path},if=none,id={d.id},format={d.format}{ro}",
                "-device", device]  # fmt: skip
    if vm.uefi is not None:
        cmd += [
            "-drive", f"if=pflash,format=raw,readonly=on,file={vm.uefi.code}",
            "-drive", f"if=pflash,format=raw,file={vm.uefi.vars}",
        ]  # fmt: skip
    cmd += list(vm.extra_args)
    return cmd


def uefi(directory: Path) -> Uefi:
    """OVMF for one VM: the variable store copied into ``directory`` (the VM writes it)."""
    if not OVMF_CODE.is_file():
        raise VmError(f"firmware uefi: {OVMF_CODE} missing (install Debian's ovmf)")
    vars_copy = directory / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, vars_copy)
    return Uefi(OVMF_CODE, vars_copy)
