"""FIPS: the kernel's switch matches the profile; FIPS images have an active FIPS provider."""

from __future__ import annotations

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.posture.fips import check_fips_enabled, check_fips_provider
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_fips_enabled(azl_host: Host, azl_profile: Profile) -> None:
    value = gather.read_optional(azl_host, "/proc/sys/crypto/fips_enabled")
    assert_no_findings(check_fips_enabled(value, azl_profile), azl_profile)


def test_openssl_fips_provider(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.fips:
        not_applicable(azl_profile, "is not a FIPS image")
    providers = gather.openssl_providers(azl_host)
    assert_no_findings(check_fips_provider(providers, azl_profile), azl_profile)
