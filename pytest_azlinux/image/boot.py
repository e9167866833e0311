"""One instance of an image target: overlay, seed or Ignition config, firmware, vTPM, tap,
qemu, and the waits until it is usable.

The image file is opened read-only as the backing file of a qcow2 overlay, so it is never
changed. qemu runs daemonized (``-pidfile``) with the same command line as the lab VMs
(``vm.qemu``), and is found again by its ``-name`` (``vm.process.is_our_qemu``), so a
recycled pid is never killed. Secure Boot firmware and the vTPM come from ``vm.firmware``
and ``vm.tpm``, the layer the lab's trusted VMs use. Usable means: sshd sent its banner and
the login user logs in with the run's key against the pinned host key; then, with
cloud-init, ``cloud-init status --wait`` returned; with Ignition, its result file says it
ran on this boot with the run's config. A console that says Ignition failed ends the wait
at once (the boot stops there; waiting for sshd would wait out the whole timeout).
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
from ..transport.protocol import CommandResult
from ..vm import firmware as sb
from ..vm.accel import accel_for_unknown_kernel
from ..vm.net import delete_link, make_tap
from ..vm.process import console_note, is_our_qemu, kill_qemu, read_pid, stop_qemu, wait_for_sshd
from ..vm.qemu import Drive, QemuVm, qemu_command, uefi
from ..vm.tpm import Swtpm, start_swtpm, stop_swtpm, tpm_qemu_args
from .claims import DiskFacts
from .ignition import console_failure, fw_cfg_args, redact
from .info import BootInfo

CONSOLE_LINES = 8
DEFAULT_BOOT_TIMEOUT = {"kvm": 300.0, "tcg": 1800.0}
INTERRUPTED = "the run was interrupted while it booted"
# With Ignition the user exists before sshd starts (the initramfs made it): a refused login
# after sshd answered is final, retried only this long (sshd restarting, a slow first login)
IGNITION_LOGIN_GRACE_SECONDS = 30.0
RESULT_FILE = "/etc/.ignition-result.json"


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
    seed: Path  # the cloud-init seed (provisioning cloud-init)
    spec: HostSpec  # how the tests reach it
    provisioning: str = "cloud-init"  # or "ignition"
    provisioning_why: str = "given"
    disk: DiskFacts | None = None  # what the file said before boot (read once per target)
    tpm: bool = False
    secure_boot_keys: Path | None = None  # the lab's keys (firmware uefi-secureboot)
    secure_boot_vars: Path | None = None  # or the image's own enrolled vars file

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

    @property
    def ignition_config(self) -> Path:
        return self.dir / "ignition.json"

    @property
    def tpm_dir(self) -> Path:
        return self.dir / "tpm"

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


def _firmware_args(inst: Instance) -> list[str]:
    """Secure Boot firmware: the lab's keys enrolled, or the image's own vars file."""
    if inst.secure_boot_vars is not None:
        return sb.firmware_qemu_args(sb.own_vars_firmware(inst.dir, inst.secure_boot_vars))
    if inst.secure_boot_keys is None:
        raise inst.error("firmware uefi-secureboot: no lab keys directory")
    keys = sb.ensure_lab_keys(inst.secure_boot_keys)
    return sb.firmware_qemu_args(sb.secure_boot_firmware(inst.dir, keys))


def qemu_vm(inst: Instance, accel: str, tpm: Swtpm | None = None) -> QemuVm:
    """The instance for qemu: the firmware boots the overlay; the seed rides along read-only
    (cloud-init), or the Ignition config in fw_cfg; a vTPM when ``tpm`` is given."""
    extra: list[str] = []
    try:
        firmware = uefi(inst.dir) if inst.firmware == "uefi" else None
        if inst.firmware == "uefi-secureboot":
            extra += _firmware_args(inst)
    except AzlError as exc:
        raise inst.error(str(exc)) from None
    drives = [Drive("disk0", inst.overlay, "qcow2", bootindex=0)]
    if inst.provisioning == "ignition":
        extra += fw_cfg_args(inst.ignition_config)
    else:
        drives.append(Drive("seed", inst.seed, "raw", readonly=True))
    if tpm is not None:
        extra += tpm_qemu_args(tpm)
    return QemuVm(
        name=inst.vm_name, accel=accel, cpus=inst.cpus, memory_mib=inst.memory,
        console_log=inst.console_log, pidfile=inst.pidfile, tap=inst.tap, mac=inst.mac,
        drives=drives, uefi=firmware, extra_args=extra,
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
    stage("overlay" + (" and seed" if inst.provisioning == "cloud-init" else ""))
    fmt = image_format(inst)
    _run(inst, ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(inst.image.absolute()),
                "-F", fmt, str(inst.overlay)], "qemu-img create (overlay)")  # fmt: skip
    disk = inst.disk or DiskFacts(skipped="not read")
    try:
        make_tap(inst.tap, inst.bridge)
    except AzlError as exc:
        raise inst.error(f"tap {inst.tap}: {exc}") from None
    tpm = _start_tpm(inst) if inst.tpm else None
    how = accel_for_unknown_kernel()
    cmd = qemu_command(qemu_vm(inst, how, tpm))
    (inst.dir / "qemu.cmd").write_text(" ".join(cmd) + "\n")
    t0 = time.monotonic()
    _run(inst, cmd, "qemu did not start")
    stage(f"booting ({how}), waiting for sshd")
    sshd = _wait_for_sshd(inst, t0, cancel)
    deadline = time.monotonic() + inst.boot_timeout
    if inst.provisioning == "ignition":
        stage(f"sshd up after {sshd:.0f} s, logging in as {inst.spec.user}")
        status = _wait_for_ignition(inst, deadline, cancel)
    else:
        stage(f"sshd up after {sshd:.0f} s, waiting for cloud-init")
        status = _wait_for_cloud_init(inst, deadline, cancel)
    return BootInfo(
        image=str(inst.image), format=fmt, firmware=inst.firmware, accel=how,
        sshd_seconds=round(sshd, 2), provisioned_seconds=round(time.monotonic() - t0, 2),
        provisioned_status=status, claimed=disk.os_release, claimed_skipped=disk.skipped,
        provisioning=inst.provisioning, provisioning_why=inst.provisioning_why,
        tpm=inst.tpm,
    )  # fmt: skip


def _start_tpm(inst: Instance) -> Swtpm:
    try:
        return start_swtpm(inst.tpm_dir)
    except AzlError as exc:
        raise inst.error(str(exc)) from None


def _console(inst: Instance) -> str:
    """The console's cleaned tail, or that it stayed empty: neither firmware, bootloader nor
    kernel wrote to the serial console, so nothing on the disk booted."""
    note = console_note(
        inst.console_log, CONSOLE_LINES,
        "the serial console stayed empty: the disk never booted (no bootloader or kernel "
        "wrote to the console)",
    )  # fmt: skip
    return redact(note) if inst.provisioning == "ignition" else note


def _alive(inst: Instance) -> bool:
    pid = read_pid(inst.pidfile)
    return pid is not None and is_our_qemu(pid, inst.vm_name)


class ConsoleWatch:
    """Reads what the console gained since the last look, for a line that says the
    provisioning failed (Ignition only: cloud-init's failures still end in a login)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""
        self.failure: str | None = None

    def failed(self) -> str | None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return self.failure
        self.offset += len(data)
        text = self.partial + data.decode(errors="replace")
        text, _, self.partial = text.rpartition("\n")
        self.failure = self.failure or console_failure(text)
        return self.failure


def _wait_for_sshd(inst: Instance, t0: float, cancel: threading.Event) -> float:
    """Seconds from qemu's start until sshd sent its banner."""
    watch = ConsoleWatch(inst.console_log) if inst.provisioning == "ignition" else None

    def going_on() -> bool:
        return _alive(inst) and (watch is None or watch.failed() is None)

    waited = wait_for_sshd(inst.address, t0 + inst.boot_timeout, going_on, cancel)
    if waited == "up":
        return time.monotonic() - t0
    if waited == "cancelled":
        raise inst.error(INTERRUPTED)
    if watch is not None and watch.failure is not None:
        raise inst.error(
            f"Ignition failed after {time.monotonic() - t0:.0f} s, the boot stopped there "
            f"(console: {redact(watch.failure)!r}); {_console(inst)}"
        )
    if waited == "exited":
        raise inst.error(f"qemu exited during boot; {_console(inst)}")
    raise inst.error(
        f"sshd did not answer within the boot timeout ({inst.boot_timeout:g} s); {_console(inst)}"
    )


def _logged_in_run(
    inst: Instance, until: float, deadline: float, cancel: threading.Event, command: str
) -> tuple[CommandResult | None, str]:
    """Log in with the run's key and run ``command`` (bounded by ``deadline``), retried
    every 2 s until ``until``: sshd may answer before the provisioner made the user. Returns
    the result, or None and the last connect error."""
    from ..transport.ssh import SshTransport

    last = "no attempt"
    while time.monotonic() < until:
        if cancel.is_set():
            raise inst.error(INTERRUPTED)
        transport = SshTransport(inst.spec)
        try:
            transport.connect()
            return transport.run(command, timeout=max(1.0, deadline - time.monotonic())), last
        except HostUnreachable as exc:
            last = exc.cause
        except InfraError as exc:
            last = str(exc)
        finally:
            transport.close()
        cancel.wait(2)
    return None, last


def _wait_for_cloud_init(inst: Instance, deadline: float, cancel: threading.Event) -> str:
    """Log in as the seed's user and wait for ``cloud-init status --wait``; returns its
    status line."""
    res, last = _logged_in_run(inst, deadline, deadline, cancel, "cloud-init status --wait")
    if res is None:
        raise inst.error(
            f"sshd answered but cloud-init was not done within {inst.boot_timeout:g} s "
            f"(last: {last}); {_console(inst)}"
        )
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    status = lines[-1] if lines else f"exit {res.rc}"
    return status.removeprefix("status:").strip()


def _wait_for_ignition(inst: Instance, deadline: float, cancel: threading.Event) -> str:
    """Log in as Ignition's user with the run's key (proof it made both) and read its
    result file: "done" when Ignition ran on this boot with a config of ours."""
    grace = min(deadline, time.monotonic() + IGNITION_LOGIN_GRACE_SECONDS)
    command = f"sudo -n cat {RESULT_FILE}; echo; cat /proc/sys/kernel/random/boot_id"
    res, last = _logged_in_run(inst, grace, deadline, cancel, command)
    if res is None:
        raise inst.error(
            f"sshd answered but {inst.spec.user} could not log in with the run's key for "
            f"{IGNITION_LOGIN_GRACE_SECONDS:g} s: Ignition did not provision the user (last: "
            f"{last}); {_console(inst)}"
        )
    return ignition_status(res.stdout, res.rc)


def ignition_status(output: str, rc: int) -> str:
    """"done" if the result file says Ignition ran on this boot with a user config; else
    what it says instead. ``output``: the result file's JSON, then the boot id."""
    text, _, boot_id = output.rstrip().rpartition("\n")
    try:
        result = json.loads(text)
    except ValueError:
        return f"no readable {RESULT_FILE} (exit {rc}): Ignition did not run"
    if not isinstance(result, dict):
        return f"{RESULT_FILE} is not a JSON object"
    if result.get("provisioningBootID") != boot_id.strip():
        return f"{RESULT_FILE} is from an earlier boot, not this one"
    if not result.get("userConfigProvided"):
        return "Ignition ran without a user config (it did not find the fw_cfg config)"
    return "done"


def kill(inst: Instance) -> None:
    """SIGKILL the instance's qemu now (from a signal handler: no waiting)."""
    kill_qemu(read_pid(inst.pidfile), inst.vm_name)


def stop(inst: Instance) -> None:
    """Kill qemu and its vTPM, delete the tap and every file of the instance (overlay, seed
    or Ignition config, firmware variables, TPM state, keys)."""
    pid = read_pid(inst.pidfile)
    if pid is not None:
        stop_qemu(pid, inst.vm_name)
    if inst.tpm:
        stop_swtpm(Swtpm(inst.tpm_dir))
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
