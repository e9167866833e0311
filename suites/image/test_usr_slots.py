"""/usr verified by dm-verity, read-only, from the A/B slot the run reports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import verity_ab
from pytest_azlinux.posture.assertions import assert_no_findings, not_applicable
from pytest_azlinux.profiles import Profile

pytestmark = pytest.mark.azl_image


def test_usr_verity_ab_slot(
    azl_host: Host, azl_profile: Profile, record_property: Callable[[str, object], None]
) -> None:
    if not azl_profile.verity_ab:
        not_applicable(azl_profile, "has no A/B /usr slots")
    usr = verity_ab.usr_verity(azl_host)
    if usr is not None:
        slot, where = usr.slot()
        record_property("azl.usr_slot", f"{slot or 'unknown'} ({where})")  # on PASS too
    assert_no_findings(verity_ab.check_verity_ab(usr, azl_profile), azl_profile)
