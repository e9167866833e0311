"""The seam between the denials sentinel and the SELinux suite.

The sentinel only notices new denial lines cheaply; what they mean is the SELinux suite's
judgement, made by its public functions: records parsed by ``analyse.avc``, grouped by
``analyse.avc_groups``, and explained by the target's ``suites.selinux.allowlist``
(``selinux.allowlist``). AppArmor denials have no suite of their own yet: they are findings
unless the sentinels' allowlist takes them. A test the SELinux suite's own watcher follows
(``azl_selinux_watch``, or the target setting ``suites.selinux.watch``) is left to that
watcher: it reports the same denials in more detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from ..analyse.avc import parse_records
from ..analyse.avc_groups import format_groups, group_denials
from ..selinux.allowlist import apply_allowlist
from ..selinux.fixtures import MARKER as SELINUX_WATCH_MARKER
from ..selinux.fixtures import settings_of
from ..session import SelectedTarget
from .sentinels import Finding


def watched_by_selinux_suite(item: pytest.Item, target: SelectedTarget) -> bool:
    return item.get_closest_marker(SELINUX_WATCH_MARKER) is not None or bool(
        target.settings("selinux").get("watch")
    )


def denial_findings(
    lines: list[str], target: SelectedTarget, allowlisted: Callable[[str], bool]
) -> list[Finding]:
    """SELinux lines judged by the SELinux suite's allowlist; AppArmor lines by
    ``allowlisted`` (the sentinels' allowlist)."""
    apparmor = [ln for ln in lines if 'apparmor="DENIED"' in ln and not allowlisted(ln)]
    selinux = [ln for ln in lines if 'apparmor="DENIED"' not in ln]
    out = []
    if selinux:
        groups = group_denials(parse_records(selinux))
        verdict = apply_allowlist(groups, settings_of(target).allowlist, dt.date.today())
        if verdict.unexplained:
            n = sum(g.count for g in verdict.unexplained)
            text = format_groups(verdict.unexplained).splitlines()
            out.append(Finding(
                "denials", f"{n} SELinux denial record(s) not in suites.selinux.allowlist",
                tuple(text),
            ))
    if apparmor:
        out.append(Finding("denials", f"{len(apparmor)} AppArmor denial(s)", tuple(apparmor)))
    return out
