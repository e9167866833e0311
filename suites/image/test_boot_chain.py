"""The boot chain: Secure Boot, a TPM, a unified kernel image, ``usrhash=`` on the command line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import boot
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable, require_facts
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_secure_boot(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.secure_boot:
        not_applicable(azl_profile, "does not require Secure Boot")
    efi = boot.efi_state(azl_host)
    assert_no_findings(boot.check_secure_boot(efi, azl_profile), azl_profile)


def test_tpm_present(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.tpm:
        not_applicable(azl_profile, "does not require a TPM")
    assert_no_findings(boot.check_tpm(boot.tpm(azl_host), azl_profile), azl_profile)


def test_booted_from_uki(
    azl_host: Host, azl_profile: Profile, record_property: Callable[[str, object], None]
) -> None:
    if not azl_profile.uki:
        not_applicable(azl_profile, "does not boot a unified kernel image")
    efi = boot.efi_state(azl_host)
    entry = boot.uki_boot(efi).entry
    if entry:
        record_property("azl.boot_entry", entry)  # which UKI, on PASS too
    assert_no_findings(boot.check_uki(efi, azl_profile), azl_profile)


def test_cmdline_usrhash(azl_host: Host, azl_profile: Profile) -> None:
    if not azl_profile.usrhash:
        not_applicable(azl_profile, "does not put usrhash= on the command line")
    require_facts(azl_host, "cmdline")  # a recording without it: SKIP, not 'no usrhash='
    assert_no_findings(boot.check_usrhash(azl_host.facts.cmdline, azl_profile), azl_profile)
