"""sshd: present (or not, on OS Guard) and ClientAliveInterval as Microsoft LISA checks."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.sshd import check_client_alive_interval, check_sshd_presence
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_sshd_presence(azl_host: Host, azl_profile: Profile) -> None:
    binary, running = gather.sshd_presence(azl_host)
    assert_no_findings(check_sshd_presence(binary, running, azl_profile), azl_profile)


def test_sshd_client_alive_interval(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.sshd:
        not_applicable(azl_profile, "has no sshd")
    if azl_profile.sshd_client_alive_interval is None:
        not_applicable(azl_profile, "sets no ClientAliveInterval range")
    settings, origin = gather.sshd_settings(azl_host)
    findings = check_client_alive_interval(settings, origin, azl_profile)
    assert_no_findings(findings, azl_profile)
