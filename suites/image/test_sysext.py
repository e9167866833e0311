"""System extensions: every one the profile names is merged; containerd comes from its own."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import sysext
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_sysexts_merged(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.sysexts:
        not_applicable(azl_profile, "expects no system extensions")
    found = sysext.sysexts(azl_host)
    assert_no_findings(sysext.check_sysexts(found, azl_profile), azl_profile)


def test_containerd_from_sysext(azl_host: Host, azl_profile: Profile) -> None:
    ext = next((n for n in azl_profile.sysexts or () if sysext.matches("containerd", n)), None)
    if ext is None:
        not_applicable(azl_profile, "does not ship containerd as a system extension")
    found = sysext.sysexts(azl_host)
    assert_no_findings(sysext.check_containerd_origin(found, ext, azl_profile), azl_profile)
