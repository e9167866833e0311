"""Assertion helpers for suites: fail with expected vs found and sources, skip with a reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import pytest

from ..facts import MISSING_FACTS
from ..host import Host
from ..profiles.model import Profile
from .findings import Finding, format_findings


def assert_no_findings(findings: Sequence[Finding], profile: Profile) -> None:
    """FAIL listing every finding; the traceback points at the test, not here."""
    __tracebackhide__ = True
    if findings:
        pytest.fail(format_findings(findings, profile.name, profile.reason), pytrace=False)


def not_applicable(profile: Profile, what: str) -> NoReturn:
    """Skip: ``not applicable: profile X <what>``."""
    __tracebackhide__ = True
    pytest.skip(f"not applicable: profile {profile.name} {what}")


_FACT_WORDS = {"kernel": "the running kernel (/proc/version)", "arch": "the machine's arch",
               "cmdline": "the kernel command line",
               "release_files": "the release files beside os-release"}


def require_facts(host: Host, *names: str) -> None:
    """Raise ``NotRecorded`` (a SKIP) when ``host`` is a recording that does not hold the
    facts ``names`` (``ImageFacts.missing``); a live host holds them all."""
    __tracebackhide__ = True
    assert all(n in MISSING_FACTS for n in names), names
    lacking = [_FACT_WORDS[n] for n in names if n in host.facts.missing]
    if lacking:
        raise host.reads.not_recorded(" or ".join(lacking))
