"""Minimum package versions, from the host's package inventory (rpm database, SPDX
manifests or dpkg, as the image keeps them)."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.packages.inventory import host_inventory
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.packages import check_packages
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_package_versions(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.packages:
        not_applicable(azl_profile, "sets no package rules")
    inventory = host_inventory(azl_host, azl_profile.package_source)
    assert_no_findings(check_packages(inventory, azl_profile), azl_profile)
