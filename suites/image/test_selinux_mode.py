"""SELinux mode: runtime as the profile says, and consistent with config and command line;
the policy the profile names."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.selinux import (
    check_selinux_consistent,
    check_selinux_mode,
    check_selinux_policy,
)
from pytest_azlinux.profiles import Profile
from pytest_azlinux.selinux.mode import read_mode

pytestmark = pytest.mark.azl_image


def test_selinux_mode(azl_host: Host, azl_profile: Profile) -> None:
    assert_no_findings(check_selinux_mode(read_mode(azl_host), azl_profile), azl_profile)


def test_selinux_config_consistent(azl_host: Host, azl_profile: Profile) -> None:
    state = read_mode(azl_host)
    assert_no_findings(check_selinux_consistent(state, azl_profile), azl_profile)


def test_selinux_policy(azl_host: Host, azl_profile: Profile) -> None:
    if azl_profile.selinux_policy is None:
        not_applicable(azl_profile, "names no SELinux policy")
    state = read_mode(azl_host)
    assert_no_findings(check_selinux_policy(state, azl_profile), azl_profile)
