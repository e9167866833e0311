"""Kernel: flavour (6.6 default vs 6.12 HWE...), release pattern, command line items."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..facts import ImageFacts
from ..profiles.model import Profile
from .findings import Finding


def check_kernel(facts: ImageFacts, profile: Profile) -> list[Finding]:
    out = []
    if profile.kernel_flavour is not None and facts.kernel_flavour != profile.kernel_flavour:
        out.append(
            Finding(
                "kernel_flavour",
                profile.kernel_flavour,
                f"{facts.kernel_flavour} (uname -r {facts.kernel})",
                profile.source("kernel_flavour"),
            )
        )
    pattern = profile.kernel_release_pattern
    if pattern is not None and not re.search(pattern, facts.kernel):
        out.append(
            Finding(
                "kernel_release",
                f"uname -r matching {pattern}",
                facts.kernel,
                profile.source("kernel_release"),
            )
        )
    return out


def cmdline_has(cmdline: Sequence[str], item: str) -> bool:
    """``key=value`` exact; ``key=`` the key with any value; ``flag`` bare or with a value."""
    key, sep, value = item.partition("=")
    for word in cmdline:
        k, wsep, v = word.partition("=")
        if k != key:
            continue
        if not sep or (sep and not value) or (wsep and v == value):
            return True
    return False


def check_cmdline(facts: ImageFacts, profile: Profile) -> list[Finding]:
    out = []
    shown = " ".join(facts.cmdline) or "(empty)"
    missing = [i for i in profile.cmdline_present if not cmdline_has(facts.cmdline, i)]
    if missing:
        out.append(
            Finding(
                "cmdline_present",
                " ".join(profile.cmdline_present),
                f"missing {' '.join(missing)} in: {shown}",
                profile.source("cmdline_present"),
            )
        )
    extra = [i for i in profile.cmdline_absent if cmdline_has(facts.cmdline, i)]
    if extra:
        out.append(
            Finding(
                "cmdline_absent",
                f"none of {' '.join(profile.cmdline_absent)}",
                f"{' '.join(extra)} in: {shown}",
                profile.source("cmdline_absent"),
            )
        )
    return out
