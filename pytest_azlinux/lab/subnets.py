"""Pick a free /24 for a lab inside 198.18.0.0/15 (the range reserved for benchmarking)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from collections.abc import Iterable
from typing import Any

from .errors import LabError

LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")


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


def pick_subnet(
    in_use: Iterable[ipaddress.IPv4Network],
    reserved: Iterable[ipaddress.IPv4Network] = (),
    explicit: str | None = None,
) -> ipaddress.IPv4Network:
    """The first /24 of 198.18.0.0/15 that overlaps nothing in use (or check ``explicit``)."""
    busy = [n for n in [*in_use, *reserved] if n.overlaps(LAB_RANGE)]
    if explicit is not None:
        try:
            net = ipaddress.IPv4Network(explicit)
        except ValueError as exc:
            raise LabError(f"invalid lab subnet {explicit!r}: {exc}") from None
        if net.prefixlen != 24:
            raise LabError(f"lab subnet {explicit!r} must be an IPv4 /24")
        if not net.subnet_of(LAB_RANGE):
            raise LabError(f"lab subnet {explicit} is outside {LAB_RANGE}")
        clash = next((b for b in busy if b.overlaps(net)), None)
        if clash is not None:
            raise LabError(
                f"lab subnet {explicit} is already in use on this machine ({clash}); "
                "pick another /24 in 198.18.0.0/15 or leave it out to choose automatically"
            )
        return net
    for net in LAB_RANGE.subnets(new_prefix=24):
        if not any(b.overlaps(net) for b in busy):
            return net
    raise LabError(
        f"address range {LAB_RANGE} is exhausted: every /24 is in use on this machine "
        "(take down other labs: azl lab status --all / azl lab down --name NAME)"
    )
