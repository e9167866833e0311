"""Running the machine's tools, and checking up front that the lab can run here."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import LabError

# tool -> Debian package that provides it (the lab runs on Debian/Ubuntu controllers)
REQUIRED_TOOLS = {
    "ip": "iproute2",
    "tc": "iproute2",
    "sshd": "openssh-server",
    "sudo": "sudo",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "losetup": "mount",
    "mount": "mount",
    "sleep": "coreutils",
    "tini": "tini",  # each host's PID 1: reaps the host's orphans
    "iperf3": "iperf3",
    "fio": "fio",
}
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for d in _SBIN:  # sbin is not on a non-login PATH everywhere
        if os.access(f"{d}/{tool}", os.X_OK):
            return f"{d}/{tool}"
    return None


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise LabError(
            f"azl lab {action} needs root (network namespaces, bridges, loop devices): "
            f"run it with sudo"
        )


def missing_packages(tools: Sequence[str] = tuple(REQUIRED_TOOLS)) -> dict[str, list[str]]:
    """Debian package -> the missing tools it provides."""
    out: dict[str, list[str]] = {}
    for tool in tools:
        if which(tool) is None:
            out.setdefault(REQUIRED_TOOLS[tool], []).append(tool)
    return out


def require_tools() -> None:
    missing = missing_packages()
    if missing:
        pkgs = sorted(missing)
        tools = ", ".join(t for p in pkgs for t in missing[p])
        raise LabError(
            f"the lab needs {tools}, missing here: install with "
            f"`apt-get install -y {' '.join(pkgs)}`"
        )
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise LabError("the lab needs overlayfs (kernel module 'overlay'): run `modprobe overlay`")


def run(cmd: Sequence[str], *, check: bool = True, input: str | None = None) -> str:
    """Run a tool; on failure raise LabError with the command and its stderr."""
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, check=False, input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else proc.returncode}")
    return proc.stdout


def try_run(cmd: Sequence[str]) -> bool:
    return subprocess.run(
        list(cmd), capture_output=True, check=False, stdin=subprocess.DEVNULL
    ).returncode == 0


def link_exists(name: str, netns: str | None = None) -> bool:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return try_run([*prefix, "link", "show", "dev", name])


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def parse_size(text: str) -> int:
    """``1G``, ``512M``, ``1GiB``, ``1073741824`` -> bytes."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    s = text.strip().upper().removesuffix("IB").removesuffix("B")
    num, unit = (s[:-1], s[-1]) if s and s[-1] in units else (s, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise LabError(f"invalid disk size {text!r} (e.g. 1G, 512M)") from None
    if value < (1 << 20):
        raise LabError(f"disk size {text!r} is too small (at least 1M)")
    return value
