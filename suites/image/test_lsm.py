"""Linux security modules: the active list, and AppArmor vs the profile (both ways)."""

from __future__ import annotations

import pytest

from pytest_azlinux.errors import InfraError
from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.lsm import check_apparmor, check_lsm
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_active_lsms(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.lsm_include and not azl_profile.lsm_exclude:
        not_applicable(azl_profile, "sets no LSM list")
    assert_no_findings(check_lsm(gather.active_lsms(azl_host), azl_profile), azl_profile)


def test_apparmor_matches_profile(azl_host: Host, azl_profile: Profile) -> None:
    try:
        lsms: list[str] | None = gather.active_lsms(azl_host)
    except InfraError:
        lsms = None  # no securityfs: judge by packages, module and service
    evidence = gather.apparmor(azl_host, lsms, azl_profile.package_source)
    assert_no_findings(check_apparmor(evidence, azl_profile), azl_profile)
