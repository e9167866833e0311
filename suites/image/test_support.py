"""Is the image still supported? Its profile's support window, judged on the run's day."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture.support import SupportEndingWarning, verdict
from pytest_azlinux.profiles import Profile
from pytest_azlinux.profiles.fixtures import successor_profile
from pytest_azlinux.session import SelectedTarget

pytestmark = pytest.mark.azl_image


def test_image_supported(
    request: pytest.FixtureRequest, azl_host: Host, azl_profile: Profile,
    azl_target: SelectedTarget, azl_today: dt.date,
    record_property: Callable[[str, object], None],
) -> None:
    """FAIL past the support end, naming the date and the successor; a warning within
    30 days of it; SKIP when the profile records no window."""
    successor = successor_profile(request.config, azl_target, azl_profile)
    result = verdict(azl_profile, azl_today, image=azl_host.facts.image_key, successor=successor)
    record_property("azl.support.state", result.state)
    if result.state == "unknown":
        pytest.skip(f"not applicable: {result.message}")
    record_property("azl.support.ends", str(result.support_ends))
    record_property("azl.support.judged_on", azl_today.isoformat())
    if azl_profile.successor:
        record_property("azl.support.successor", azl_profile.successor)
    if result.state == "ended":
        pytest.fail(result.message, pytrace=False)
    if result.state == "ending":
        warnings.warn(SupportEndingWarning(result.message), stacklevel=1)
