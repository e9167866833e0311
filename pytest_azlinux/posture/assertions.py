"""Assertion helpers for suites: fail with expected vs found and sources, skip with a reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import pytest

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
