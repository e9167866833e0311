"""Installed package versions through rpm (Azure Linux) or dpkg-query (Debian-based hosts).

The comparison is rpm's (``rpmvercmp``, with ``~`` sorting before anything and ``^`` after
the base): a minimum ``1.1.12`` compares the upstream version only; a minimum with an epoch
(``1:2.0``) or a release (``2.0-3.azl3``) compares those too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..profiles.model import Profile
from .findings import Finding

Backend = Literal["rpm", "dpkg"]
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


def rpm_query_command(names: Sequence[str]) -> str:
    return "rpm -q --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n' -- " + " ".join(
        _quote(n) for n in names
    )


def dpkg_query_command(names: Sequence[str]) -> str:
    return "dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' -- " + " ".join(
        _quote(n) for n in names
    )


def _quote(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.+_-]+", name):
        raise ValueError(f"not a package name: {name!r}")
    return name


def parse_query(backend: Backend, text: str) -> dict[str, str]:
    """Installed ``name -> version`` from the query output (missing packages are absent)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1]:
            continue  # "package x is not installed" (rpm) or an unpacked-only entry
        if backend == "dpkg" and (len(parts) < 3 or not parts[2].startswith("ii")):
            continue  # dpkg knows the name but it is not installed
        out.setdefault(parts[0].split(":")[0], parts[1])  # strip dpkg's ":amd64"
    return out


def check_packages(installed: Mapping[str, str], backend: str, profile: Profile) -> list[Finding]:
    out = []
    for rule in profile.packages:
        have = installed.get(rule.name)
        if have is None:
            if rule.required:
                out.append(
                    Finding(
                        f"packages.{rule.name}",
                        f"{rule.name} installed" + (f" (>= {rule.min})" if rule.min else ""),
                        f"not installed ({backend})",
                        rule.source,
                    )
                )
            continue
        if rule.min is not None and not version_at_least(have, rule.min):
            out.append(
                Finding(
                    f"packages.{rule.name}",
                    f"{rule.name} >= {rule.min}",
                    f"{have} ({backend})",
                    rule.source,
                )
            )
    return out

