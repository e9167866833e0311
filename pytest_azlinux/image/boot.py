"""One instance of an image target: overlay, seed, tap, qemu, and the waits until it is usable.

The image file is opened read-only as the backing file of a qcow2 overlay, so it is never
changed. qemu runs daemonized (``-pidfile``) with the same command line as the lab VMs
(``vm.qemu``), and is found again by its ``-name`` (``vm.process.is_our_qemu``), so a
recycled pid is never killed. Usable means: sshd sent its banner, the seed's user logs in
with the run's key against the pinned host key, and ``cloud-init status --wait`` returned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import AzlError, HostUnreachable, ImageBootError, InfraError
from ..targets import HostSpec
from ..vm.accel import accel_for_unknown_kernel
from ..vm.net import delete_link, make_tap
from ..vm.process import console_note, is_our_qemu, kill_qemu, read_pid, stop_qemu, wait_for_sshd
from ..vm.qemu import Drive, QemuVm, qemu_command, uefi
from .claims import read_claims
from .info import BootInfo

CONSOLE_LINES = 8
DEFAULT_BOOT_TIMEOUT = {"kvm": 300.0, "tcg": 1800.0}
INTERRUPTED = "the run was interrupted while it booted"


@dataclass
class Instance:
    """One VM of an image target, and where its files live."""

    host: str  # host name in test ids
    vm_name: str  # qemu's -name is azl-vm-<vm_name>
    image: Path
    format: str | None
    firmware: str
    memory: int
    cpus: int
    boot_timeout: float
    address: str
    mac: str
    tap: str
    bridge: str
    dir: Path
    seed: Path
    spec: HostSpec  # how the tests reach it

    @property
    def overlay(self) -> Path:
        return self.dir / "overlay.qcow2"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def ready_file(self) -> Path:
        return self.dir / "ready.json"

    @property
    def failed_file(self) -> Path:
        return self.dir / "failed.txt"

    def error(self, cause: str) -> ImageBootError:
        return ImageBootError(self.host, self.address, f"image {self.image}: {cause}")


def boot_timeout(given: float | None, how: str) -> float:
    """The boot timeout given, else one for the accelerator (TCG boots take minutes)."""
    if given is not None:
        return given
    return DEFAULT_BOOT_TIMEOUT[how]


def image_format(inst: Instance) -> str:
    """The format qemu reads the file as; an unreadable file is an ImageBootError now."""
    cmd = ["qemu-img", "info", "--output=json"]
    if inst.format:
        cmd += ["-f", inst.format]
    res = subprocess.run([*cmd, str(inst.image)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        reason = (res.stderr.strip().splitlines() or ["qemu-img info failed"])[-1]
        as_what = f" as {inst.format}" if inst.format else ""
        raise inst.error(f"qemu cannot read the file{as_what}: {reason.removeprefix('qemu-img: ')}")
    fmt = str(json.loads(res.stdout).get("format", inst.format or "raw"))
    return fmt


def qemu_vm(inst: Instance, accel: str) -> QemuVm:
    """The instance for qemu: the firmware boots the overlay; the seed rides along read-only."""
    try:
        firmware = uefi(inst.dir) if inst.firmware == "uefi" else None
    except AzlError as exc:
        raise inst.error(str(exc)) from None
    return QemuVm(
        name=inst.vm_name, accel=accel, cpus=inst.cpus, memory_mib=inst.memory,
        console_log=inst.console_log, pidfile=inst.pidfile, tap=inst.tap, mac=inst.mac,
        drives=[Drive("disk0", inst.overlay, "qcow2", bootindex=0),
                Drive("seed", inst.seed, "raw", readonly=True)],
        uefi=firmware,
    )  # fmt: skip


def _run(inst: Instance, cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise inst.error(f"{what}: {res.stderr.strip() or f'exit {res.returncode}'}")


def boot(inst: Instance, cancel: threading.Event,
         stage: Callable[[str], None] = lambda _: None) -> BootInfo:
    """Boot ``inst`` and wait until it is usable; write ready.json (or failed.txt).
    ``stage`` hears each stage as it begins (progress)."""
    try:
        info = _boot(inst, cancel, stage)
    except InfraError as exc:
        inst.failed_file.write_text(str(exc))
        raise
    except Exception as exc:
        inst.failed_file.write_text(f"{type(exc).__name__}: {exc}")
        raise
    inst.ready_file.write_text(info.to_json())
    return info


def _boot(inst: Instance, cancel: threading.Event, stage: Callable[[str], None]) -> BootInfo:
    stage("overlay and seed")
    fmt = image_format(inst)
    _run(inst, ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(inst.image.absolute()),
                "-F", fmt, str(inst.overlay)], "qemu-img create (overlay)")  # fmt: skip
    claimed, skipped = read_claims(inst.overlay)
    try:
        make_tap(inst.tap, inst.bridge)
    except AzlError as exc:
        raise inst.error(f"tap {inst.tap}: {exc}") from None
    how = accel_for_unknown_kernel()
    cmd = qemu_command(qemu_vm(inst, how))
    (inst.dir / "qemu.cmd").write_text(" ".join(cmd) + "\n")
    t0 = time.monotonic()
    _run(inst, cmd, "qemu did not start")
    stage(f"booting ({how}), waiting for sshd")
    sshd = _wait_for_sshd(inst, t0, cancel)
    stage(f"sshd up after {sshd:.0f} s, waiting for cloud-init")
    status = _wait_for_cloud_init(inst, time.monotonic() + inst.boot_timeout, cancel)
    return BootInfo(
        image=str(inst.image), format=fmt, firmware=inst.firmware, accel=how,
        sshd_seconds=round(sshd, 2), cloud_init_seconds=round(time.monotonic() - t0, 2),
        cloud_init_status=status, claimed=claimed, claimed_skipped=skipped,
    )  # fmt: skip


def _console(inst: Instance) -> str:
    """The console's cleaned tail, or that it stayed empty: neither firmware, bootloader nor
    kernel wrote to the serial console, so nothing on the disk booted."""
    return console_note(
        inst.console_log, CONSOLE_LINES,
        "the serial console stayed empty: the disk never booted (no bootloader or kernel "
        "wrote to the console)",
    )  # fmt: skip


def _alive(inst: Instance) -> bool:
    pid = read_pid(inst.pidfile)
    return pid is not None and is_our_qemu(pid, inst.vm_name)


def _wait_for_sshd(inst: Instance, t0: float, cancel: threading.Event) -> float:
    """Seconds from qemu's start until sshd sent its banner."""
    waited = wait_for_sshd(inst.address, t0 + inst.boot_timeout, lambda: _alive(inst), cancel)
    if waited == "up":
        return time.monotonic() - t0
    if waited == "cancelled":
        raise inst.error(INTERRUPTED)
    if waited == "exited":
        raise inst.error(f"qemu exited during boot; {_console(inst)}")
    raise inst.error(
        f"sshd did not answer within the boot timeout ({inst.boot_timeout:g} s); {_console(inst)}"
    )


def _wait_for_cloud_init(inst: Instance, deadline: float, cancel: threading.Event) -> str:
    """Log in as the seed's user (retried: sshd may start before cloud-init made the user)
    and wait for ``cloud-init status --wait``; returns its status line."""
    from ..transport.ssh import SshTransport

    last = "no attempt"
    while time.monotonic() < deadline:
        if cancel.is_set():
            raise inst.error(INTERRUPTED)
        transport = SshTransport(inst.spec)
        try:
            transport.connect()
            left = max(1.0, deadline - time.monotonic())
            res = transport.run("cloud-init status --wait", timeout=left)
            lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
            status = lines[-1] if lines else f"exit {res.rc}"
            return status.removeprefix("status:").strip()
        except HostUnreachable as exc:
            last = exc.cause
        except InfraError as exc:
            last = str(exc)
        finally:
            transport.close()
        cancel.wait(2)
    raise inst.error(
        f"sshd answered but cloud-init was not done within {inst.boot_timeout:g} s "
        f"(last: {last}); {_console(inst)}"
    )


def kill(inst: Instance) -> None:
    """SIGKILL the instance's qemu now (from a signal handler: no waiting)."""
    kill_qemu(read_pid(inst.pidfile), inst.vm_name)


def stop(inst: Instance) -> None:
    """Kill qemu, delete the tap and every file of the instance (overlay, seed, keys)."""
    pid = read_pid(inst.pidfile)
    if pid is not None:
        stop_qemu(pid, inst.vm_name)
    delete_link(inst.tap)
    shutil.rmtree(inst.dir, ignore_errors=True)


def keep_hint(inst: Instance) -> str:
    """How to reach (and later remove) an instance left running with --azl-keep."""
    spec = inst.spec
    return (
        f"ssh -i {spec.identity_file} -o UserKnownHostsFile={spec.known_hosts} "
        f"-o StrictHostKeyChecking=yes {spec.user}@{inst.address}   "
        f"(qemu pid {read_pid(inst.pidfile)}, files in {inst.dir}, console {inst.console_log})"
    )


def stop_command(inst: Instance) -> str:
    """The shell commands that do what ``stop`` does, for an instance left running."""
    pid = read_pid(inst.pidfile)
    kill = f"kill {pid}; " if pid is not None else ""
    return f"{kill}ip link del {inst.tap}"
