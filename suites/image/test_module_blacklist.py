"""The kernel-module blacklist (algif_aead, esp4, esp6, rxrpc): required or forbidden."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import module_blacklist
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_module_blacklist(azl_host: Host, azl_profile: Profile) -> None:
    if azl_profile.module_blacklist is None:
        not_applicable(azl_profile, "says nothing about the module blacklist")
    found = module_blacklist.modprobe_lines(azl_host)
    assert_no_findings(module_blacklist.check_module_blacklist(found, azl_profile), azl_profile)
