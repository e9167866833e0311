"""Minimum package versions (rpm on Azure Linux, dpkg-query on Debian-based hosts)."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.packages import check_packages
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_package_versions(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.packages:
        not_applicable(azl_profile, "sets no package rules")
    names = [p.name for p in azl_profile.packages]
    backend, installed = gather.installed_packages(azl_host, names)
    assert_no_findings(check_packages(installed, backend, azl_profile), azl_profile)
