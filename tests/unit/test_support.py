"""Support windows: the verdict on the shipped profiles' real dates, day by day."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_azlinux.posture.support import WARN_DAYS, parse_day, successor_name, verdict
from pytest_azlinux.profiles import load_profiles

OSGUARD_IMAGE = "azurelinux-3.0.20260107-osguard"  # the key AgentBaker's OS Guard images give


def judge(profile: str, day: str, image: str = OSGUARD_IMAGE) -> tuple[str, str]:
    profiles = load_profiles()
    p = profiles.get(profile)
    successor = profiles.get(p.successor) if p.successor else None
    result = verdict(p, parse_day(day), image=image, successor=successor)
    return result.state, result.message


@pytest.mark.parametrize(
    ("day", "state"),
    [
        ("2026-11-09", "supported"),  # 31 days before
        ("2026-11-10", "ending"),  # 30 days before: the warning starts
        ("2026-12-09", "ending"),  # the last supported day
        ("2026-12-10", "ended"),  # 'retired on December 10, 2026' (Azure/AKS#5950)
        ("2027-03-11", "ended"),
    ],
)
def test_os_guard_day_by_day(day: str, state: str) -> None:
    assert judge("aks-node-osguard", day)[0] == state


def test_the_fail_is_one_line_with_image_date_removal_and_successor() -> None:
    state, message = judge("aks-node-osguard", "2026-12-11")
    assert state == "ended" and "\n" not in message
    assert message == (
        "image azurelinux-3.0.20260107-osguard (profile aks-node-osguard): out of support "
        "since 2026-12-10 (images to be removed 2027-03-10); move to AKS node running "
        "Azure Container Linux (profile aks-node-acl)")
    assert judge("aks-node-osguard", "2027-03-10")[1].count("(images removed 2027-03-10)") == 1


def test_the_warning_counts_the_days() -> None:
    assert "support ends 2026-12-10, in 3 days" in judge("azl-3.0-osguard", "2026-12-07")[1]
    assert "support ends 2026-12-10, tomorrow" in judge("azl-3.0-osguard", "2026-12-09")[1]
    assert WARN_DAYS == 30


def test_mariner_is_out_of_support_and_azure_linux_3_has_no_window() -> None:
    state, message = judge("mariner-2.0", "2026-12-07", image="mariner-2.0.20250925")
    assert state == "ended"
    assert "since 2025-11-30 (images removed 2026-03-31)" in message
    assert message.endswith("move to Azure Linux 3.0 marketplace image (profile azl-3.0)")
    state, message = judge("azl-3.0", "2026-12-07", image="azurelinux-3.0.20251021")
    assert state == "unknown"
    assert message == "no support window known: profile azl-3.0 sets no support_ends"


def test_a_successor_that_is_no_profile_is_shown_as_written() -> None:
    p = load_profiles().get("azl-3.0-osguard").model_copy(update={"successor": "ACL"})
    result = verdict(p, dt.date(2027, 1, 1), image="x")
    assert result.message.endswith("; move to ACL")


def test_successor_name_is_the_head_of_the_description() -> None:
    assert successor_name(load_profiles().get("acl-3.0")) == (
        "Azure Container Linux 3.0 (profile acl-3.0)")


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "tomorrow", "2026-1-5", ""])
def test_bad_days_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a date YYYY-MM-DD"):
        parse_day(text)
