"""The network VMs and lab hosts sit on: a /24 of 198.18.0.0/15 (the range reserved for
benchmarking) on a bridge of this machine, a tap per VM, and interface names that fit.

Labs and image targets allocate addresses under one machine-wide lock (``MACHINE_LOCK``),
so two of them starting at once never pick the same /24.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import VmError

ADDRESS_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
MACHINE_LOCK = Path("/run/azl-lab.lock")  # serialises address (and loop device) allocation


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (a directory, or a lock file made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | (0 if path.is_dir() else os.O_CREAT), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def iface_key(name: str) -> str:
    """Up to six characters that identify ``name`` in interface names (at most 15
    characters, IFNAMSIZ - 1): a longer name becomes a stable hash-based key."""
    if len(name) <= 6:
        return name
    return name[:2] + hashlib.sha1(name.encode()).hexdigest()[:4]


def networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network configured on this machine (addresses and routes, all tables)."""
    out: list[ipaddress.IPv4Network] = []
    for link in _ip_json(["ip", "-j", "-4", "addr", "show"]):
        for info in link.get("addr_info", []):
            with contextlib.suppress(KeyError, ValueError):
                out.append(
                    ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False)
                )
    for route in _ip_json(["ip", "-j", "-4", "route", "show", "table", "all"]):
        dst = str(route.get("dst", ""))
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                out.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return out


def _ip_json(cmd: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    data = json.loads(proc.stdout)
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def free_subnet(
    in_use: Iterable[ipaddress.IPv4Network], reserved: Iterable[ipaddress.IPv4Network] = ()
) -> ipaddress.IPv4Network:
    """The first /24 of ``ADDRESS_RANGE`` that overlaps nothing in use or reserved."""
    busy = [n for n in [*in_use, *reserved] if n.overlaps(ADDRESS_RANGE)]
    for net in ADDRESS_RANGE.subnets(new_prefix=24):
        if not any(b.overlaps(net) for b in busy):
            return net
    raise VmError(
        f"address range {ADDRESS_RANGE} is exhausted: every /24 is in use on this machine "
        "(take down other labs: azl lab status --all / azl lab down --name NAME)"
    )


def _ip(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    if check and res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise VmError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else res.returncode}")
    return res


def add_bridge(name: str, alias: str, subnet: ipaddress.IPv4Network) -> str:
    """Bridge ``name`` with the first address of ``subnet`` (returned: the gateway of no
    route, nothing is forwarded) and ``alias`` (says whose it is); call under
    ``MACHINE_LOCK``. Nothing is left behind when a step fails."""
    gateway = str(subnet.network_address + 1)
    _ip(["link", "add", name, "type", "bridge"])
    try:
        _ip(["link", "set", name, "alias", alias])
        _ip(["addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", name])
        _ip(["link", "set", name, "up"])
    except VmError:
        delete_link(name)
        raise
    return gateway


def make_tap(tap: str, bridge: str) -> None:
    """A fresh tap ``tap`` on ``bridge`` (one left over by a killed run is replaced)."""
    delete_link(tap)
    _ip(["tuntap", "add", "dev", tap, "mode", "tap"])
    _ip(["link", "set", tap, "master", bridge, "up"])


def delete_link(name: str) -> None:
    """Delete a tap or bridge; gone already is fine."""
    _ip(["link", "del", name], check=False)


def ssh_banner(
    address: str, timeout: float = 2.0, read_timeout: float | None = None
) -> str | None:
    """The SSH banner of ``address:22``, or None when nothing answers (``timeout`` to
    connect, ``read_timeout``, default the same, for the banner: a booting guest is slow)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout if read_timeout is None else read_timeout)
            data = sock.recv(256)
    except OSError:
        return None
    text = data.decode(errors="replace").strip()
    return text if text.startswith("SSH-") else None
