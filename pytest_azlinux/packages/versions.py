"""rpm's version ordering: ``rpmvercmp``, ``[epoch:]version-release`` values and their order.

The comparison is rpm's (``rpmvercmp``, with ``~`` sorting before anything and ``^`` after
the base). ``version_at_least`` judges a profile's minimum: a minimum ``1.1.12`` compares
the upstream version only; one with an epoch (``1:2.0``) or a release (``2.0-3.azl3``)
compares those too. ``compare_evr`` is the full order of two installed versions (a missing
epoch is 0, as rpm counts it), for telling an upgrade from a downgrade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEGMENT = re.compile(r"[A-Za-z]+|[0-9]+|~|\^")


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0, 1 as rpm compares two version (or release) strings."""
    if a == b:
        return 0
    sa, sb = _SEGMENT.findall(a), _SEGMENT.findall(b)
    i = 0
    while True:
        xa = sa[i] if i < len(sa) else None
        xb = sb[i] if i < len(sb) else None
        # "~" sorts before everything, even the end of the string
        if xa == "~" or xb == "~":
            if xa != xb:
                return -1 if xa == "~" else 1
            i += 1
            continue
        # "^" sorts after the end of the string but before any other segment
        if xa == "^" or xb == "^":
            if xa is None:
                return -1
            if xb is None:
                return 1
            if xa != xb:
                return -1 if xa == "^" else 1
            i += 1
            continue
        if xa is None or xb is None:
            return 0 if xa == xb else (-1 if xa is None else 1)
        if xa.isdigit() != xb.isdigit():
            return 1 if xa.isdigit() else -1  # numbers are newer than letters
        if xa.isdigit():
            na, nb = int(xa), int(xb)
            if na != nb:
                return -1 if na < nb else 1
        elif xa != xb:
            return -1 if xa < xb else 1
        i += 1


@dataclass(frozen=True)
class EVR:
    """``[epoch:]version[-release]`` (epoch None: not written; release None: not written)."""

    epoch: int | None
    version: str
    release: str | None

    @classmethod
    def parse(cls, text: str) -> EVR:
        text = text.strip()
        epoch: int | None = None
        if ":" in text:
            e, _, text = text.partition(":")
            epoch = int(e) if e.isdigit() else 0
        version, sep, release = text.rpartition("-")
        if not sep:
            version, release = release, ""
        return cls(epoch, version, release or None)

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{epoch}{self.version}" + (f"-{self.release}" if self.release is not None else "")


def version_at_least(installed: str, minimum: str) -> bool:
    """``installed >= minimum``; parts the minimum leaves out are not compared."""
    have, want = EVR.parse(installed), EVR.parse(minimum)
    if want.epoch is not None:
        cmp = (have.epoch or 0) - want.epoch
        if cmp:
            return cmp > 0
    cmp = rpmvercmp(have.version, want.version)
    if cmp or want.release is None:
        return cmp >= 0
    return rpmvercmp(have.release or "", want.release) >= 0


def compare_evr(a: EVR | str, b: EVR | str) -> int:
    """-1, 0, 1: the full order of two versions, epoch first (missing: 0), then version, then
    release (missing: older than any), each part by ``rpmvercmp``."""
    x = a if isinstance(a, EVR) else EVR.parse(a)
    y = b if isinstance(b, EVR) else EVR.parse(b)
    ex, ey = x.epoch or 0, y.epoch or 0
    if ex != ey:
        return -1 if ex < ey else 1
    return rpmvercmp(x.version, y.version) or rpmvercmp(x.release or "", y.release or "")
