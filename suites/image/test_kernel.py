"""Kernel flavour (6.6 default vs 6.12 HWE), release, and command line items."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable, require_facts
from pytest_azlinux.posture.kernel import check_cmdline, check_kernel
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_kernel_flavour_and_release(azl_host: Host, azl_profile: Profile) -> None:
    if azl_profile.kernel_flavour is None and azl_profile.kernel_release_pattern is None:
        not_applicable(azl_profile, "sets no kernel flavour or release")
    require_facts(azl_host, "kernel")
    assert_no_findings(check_kernel(azl_host.facts, azl_profile), azl_profile)


def test_kernel_cmdline(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.cmdline_present and not azl_profile.cmdline_absent:
        not_applicable(azl_profile, "expects no kernel command line items")
    require_facts(azl_host, "cmdline")
    assert_no_findings(check_cmdline(azl_host.facts, azl_profile), azl_profile)
