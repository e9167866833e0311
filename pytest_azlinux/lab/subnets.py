"""The lab's /24 inside 198.18.0.0/15: the one asked for (``azl lab up --subnet``), checked,
or the first free one (``vm.net.free_subnet``, shared with image targets)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..vm.net import ADDRESS_RANGE, free_subnet
from .errors import LabError


def pick_subnet(
    in_use: Iterable[ipaddress.IPv4Network],
    reserved: Iterable[ipaddress.IPv4Network] = (),
    explicit: str | None = None,
) -> ipaddress.IPv4Network:
    """The first /24 of 198.18.0.0/15 that overlaps nothing in use (or check ``explicit``)."""
    if explicit is None:
        return free_subnet(in_use, reserved)
    busy = [n for n in [*in_use, *reserved] if n.overlaps(ADDRESS_RANGE)]
    try:
        net = ipaddress.IPv4Network(explicit)
    except ValueError as exc:
        raise LabError(f"invalid lab subnet {explicit!r}: {exc}") from None
    if net.prefixlen != 24:
        raise LabError(f"lab subnet {explicit!r} must be an IPv4 /24")
    if not net.subnet_of(ADDRESS_RANGE):
        raise LabError(f"lab subnet {explicit} is outside {ADDRESS_RANGE}")
    clash = next((b for b in busy if b.overlaps(net)), None)
    if clash is not None:
        raise LabError(
            f"lab subnet {explicit} is already in use on this machine ({clash}); "
            "pick another /24 in 198.18.0.0/15 or leave it out to choose automatically"
        )
    return net
