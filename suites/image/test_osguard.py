"""OS Guard: dm-verity on /usr, /usr read-only, an active IPE policy, the IPE mode."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.osguard import (
    check_ipe,
    check_ipe_mode,
    check_usr_readonly,
    check_verity,
)
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_usr_verity(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.verity_usr:
        not_applicable(azl_profile, "has no verity")
    assert_no_findings(check_verity(gather.usr_verity_status(azl_host), azl_profile), azl_profile)


def test_usr_read_only(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.verity_usr:
        not_applicable(azl_profile, "has no verity (a writable /usr is expected)")
    mounts = azl_host.read_text("/proc/self/mounts")
    assert_no_findings(check_usr_readonly(mounts, azl_profile), azl_profile)


def test_ipe_policy_active(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.ipe:
        not_applicable(azl_profile, "expects no IPE policy")
    assert_no_findings(check_ipe(gather.ipe_policies(azl_host), azl_profile), azl_profile)


def test_ipe_mode(azl_host: Host, azl_profile: Profile) -> None:
    if azl_profile.ipe_mode is None:
        not_applicable(azl_profile, "sets no IPE mode")
    assert_no_findings(check_ipe_mode(gather.ipe_mode(azl_host), azl_profile), azl_profile)
