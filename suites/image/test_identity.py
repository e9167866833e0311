"""Is the host the image it claims to be? Identity files, expected version, one image."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture.assertions import assert_no_findings, require_facts
from pytest_azlinux.posture.identity import (
    check_expected_version,
    check_profile_identity,
    check_release_files_agree,
)
from pytest_azlinux.profiles import Profile
from pytest_azlinux.report.rejudge import ONE_IMAGE, image_evidence, judge_target
from pytest_azlinux.session import SelectedTarget

pytestmark = pytest.mark.azl_image


def test_os_release_matches_profile(azl_host: Host, azl_profile: Profile) -> None:
    assert_no_findings(check_profile_identity(azl_host.facts, azl_profile), azl_profile)


def test_release_files_agree(azl_host: Host, azl_profile: Profile) -> None:
    require_facts(azl_host, "release_files")
    assert_no_findings(check_release_files_agree(azl_host.facts), azl_profile)


def test_expected_image_version(
    azl_host: Host, azl_profile: Profile, azl_target: SelectedTarget
) -> None:
    expected = azl_target.config.expect.image_version
    if not expected:
        pytest.skip(f"not applicable: target {azl_target.name} sets no expect.image_version")
    assert_no_findings(check_expected_version(azl_host.facts, expected), azl_profile)


def test_one_image_per_target(
    azl_hosts: list[Host], azl_target: SelectedTarget,
    record_property: Callable[[str, object], None],
) -> None:
    """One image on every host, and on AKS nodes one node image version (a pool half
    upgraded names both versions and the nodes on each). Judged again by ``azl report
    merge`` over every shard's hosts (report/rejudge.py)."""
    __tracebackhide__ = True
    if azl_target.config.expect.allow_mixed_images:
        pytest.skip(f"not applicable: target {azl_target.name} allows mixed images")
    evidence = {h.name: image_evidence(h.facts.image_key, h.facts.node_image_version)
                for h in azl_hosts}
    failure = judge_target(record_property, ONE_IMAGE, azl_target.name, evidence)
    if failure:
        pytest.fail(failure, pytrace=False)
