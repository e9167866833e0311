"""A vTPM for one VM: swtpm (TPM 2.0) with a state directory of its own.

The API (image targets and lab VMs both code against it)::

    tpm = start_swtpm(vm_dir / "tpm")    # swtpm daemon, state in that directory
    args = tpm_qemu_args(tpm)            # -chardev socket + -tpmdev emulator + tpm-tis
    stop_swtpm(tpm)                      # kill it (if still ours) and remove the state

    with running_swtpm(vm_dir / "tpm") as tpm:   # stopped and removed if the block raises
        ...start qemu with tpm_qemu_args(tpm)...

swtpm runs with ``--terminate``: it exits when qemu closes the connection, so a VM that
dies takes its TPM with it; ``stop_swtpm`` still removes the state (a TPM's state is the
VM's: never reused by another). The daemon is found again by its pid file and checked
against its command line (the state directory), never killed by a pid alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import VmError

SWTPM = "swtpm"
START_SECONDS = 10.0


@dataclass(frozen=True)
class Swtpm:
    """One VM's swtpm: its state directory, control socket, pid file and log."""

    state_dir: Path

    @property
    def socket(self) -> Path:
        return self.state_dir / "swtpm.sock"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "swtpm.pid"

    @property
    def log(self) -> Path:
        return self.state_dir / "swtpm.log"

    def pid(self) -> int | None:
        """The daemon's pid while it runs (and is this state directory's swtpm)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if f"dir={self.state_dir}".encode() in argv else None


def start_swtpm(state_dir: Path) -> Swtpm:
    """A fresh TPM 2.0 in ``state_dir`` (emptied first), its control socket ready."""
    tpm = Swtpm(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True, mode=0o700)
    cmd = [
        SWTPM, "socket", "--tpm2",
        "--tpmstate", f"dir={state_dir}",
        "--ctrl", f"type=unixio,path={tpm.socket}",
        "--pid", f"file={tpm.pidfile}",
        "--log", f"file={tpm.log},level=1",
        "--terminate", "--daemon",
    ]  # fmt: skip
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise VmError(f"vTPM: {SWTPM} not installed (Debian: swtpm, swtpm-tools)") from None
    except subprocess.TimeoutExpired:
        stop_swtpm(tpm)
        raise VmError(f"vTPM: {SWTPM} did not daemonize within 30 s") from None
    if res.returncode != 0:
        stop_swtpm(tpm)
        raise VmError(f"vTPM: {SWTPM} failed (rc={res.returncode}): {res.stderr.strip()}")
    deadline = time.monotonic() + START_SECONDS
    while not (tpm.socket.exists() and tpm.pid() is not None):
        if time.monotonic() > deadline:
            stop_swtpm(tpm)
            raise VmError(f"vTPM: {SWTPM} made no socket {tpm.socket} in {START_SECONDS:.0f} s")
        time.sleep(0.05)
    return tpm


def tpm_qemu_args(tpm: Swtpm) -> list[str]:
    """qemu's TPM 2.0 on the TIS interface, backed by the swtpm at ``tpm.socket``."""
    return [
        "-chardev", f"socket,id=chrtpm,path={tpm.socket}",
        "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
        "-device", "tpm-tis,tpmdev=tpm0",
    ]  # fmt: skip


def stop_swtpm(tpm: Swtpm, grace: float = 3.0) -> None:
    """SIGTERM (SIGKILL after ``grace`` s) if it still runs; then remove its state."""
    pid = tpm.pid()
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while tpm.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if tpm.pid() is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(tpm.state_dir, ignore_errors=True)


@contextlib.contextmanager
def running_swtpm(state_dir: Path) -> Iterator[Swtpm]:
    """``start_swtpm``; stopped and removed if the block raises (the VM failed to start).
    On success the caller owns it (``stop_swtpm`` when the VM stops)."""
    tpm = start_swtpm(state_dir)
    try:
        yield tpm
    except BaseException:
        stop_swtpm(tpm)
        raise
