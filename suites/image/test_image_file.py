"""Image files (``kind: image``): what the file claimed before boot against what the booted
system says, the provisioner's verdict (cloud-init or Ignition), and how long the boot took
(metrics, lower is better, so ``azl report compare`` flags a slower image). Skipped for
targets that are not image files.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.image.info import BootInfo, BootInfoSource
from pytest_azlinux.session import SelectedTarget

pytestmark = pytest.mark.azl_image

# os-release fields a file's claim and the booted system must agree on
COMPARED = ("ID", "VERSION_ID", "VERSION", "VARIANT_ID")
CLAIM_PREFIX = "azl.image_file.claimed_"
BOOTED_PREFIX = "azl.image_file.booted_"


def _boot_info(target: SelectedTarget, host: Host) -> BootInfo:
    if not isinstance(target.context, BootInfoSource):
        pytest.skip(f"not applicable: target {target.name} is not an image file ({target.kind})")
    info = target.context.boot_info(host.name)
    if info is None:
        pytest.skip(f"{host.name}: no boot record (the instance did not boot in this run)")
    return info


def test_file_claims_match_booted_system(
    azl_host: Host, azl_target: SelectedTarget, record_property: Callable[[str, object], None]
) -> None:
    __tracebackhide__ = True
    info = _boot_info(azl_target, azl_host)
    booted = azl_host.facts.os_release
    for key in COMPARED:
        record_property(f"{BOOTED_PREFIX}{key.lower()}", booted.get(key, ""))
    if not info.claimed:
        record_property(f"{CLAIM_PREFIX}skipped", info.claimed_skipped)
        pytest.skip(f"the file's os-release was not read before boot: {info.claimed_skipped}")
    for key in COMPARED:
        record_property(f"{CLAIM_PREFIX}{key.lower()}", info.claimed.get(key, ""))
    differ = [
        f"{key}: file {info.claimed.get(key, '(unset)')!r}, booted {booted.get(key, '(unset)')!r}"
        for key in COMPARED
        if info.claimed.get(key) != booted.get(key)
    ]
    if differ:
        pytest.fail(
            f"{azl_host.name}: the booted system is not what {info.image} claims: "
            + "; ".join(differ),
            pytrace=False,
        )


def test_cloud_init_done(azl_host: Host, azl_target: SelectedTarget) -> None:
    __tracebackhide__ = True
    info = _boot_info(azl_target, azl_host)
    if info.provisioning != "cloud-init":
        pytest.skip(f"not applicable: {azl_host.name} is provisioned by {info.provisioning} "
                    f"({info.provisioning_why})")  # fmt: skip
    if info.provisioned_status != "done":
        pytest.fail(
            f"{azl_host.name}: cloud-init finished with status {info.provisioned_status!r} "
            "(expected 'done'; see `cloud-init status --long` on the host)",
            pytrace=False,
        )


def test_ignition_done(
    azl_host: Host, azl_target: SelectedTarget, record_property: Callable[[str, object], None]
) -> None:
    """Ignition ran on this boot with the run's config (its result file says so), and the
    user it made is the one the tests logged in as."""
    __tracebackhide__ = True
    info = _boot_info(azl_target, azl_host)
    if info.provisioning != "ignition":
        pytest.skip(f"not applicable: {azl_host.name} is provisioned by {info.provisioning} "
                    f"({info.provisioning_why})")  # fmt: skip
    record_property("azl.image_file.provisioning_why", info.provisioning_why)
    if info.provisioned_status != "done":
        pytest.fail(f"{azl_host.name}: Ignition: {info.provisioned_status}", pytrace=False)


def test_boot_time(azl_host: Host, azl_target: SelectedTarget, azl_metric: MetricRecorder) -> None:
    info = _boot_info(azl_target, azl_host)
    azl_metric("boot_sshd_seconds", info.sshd_seconds, "s", better="lower")
    name = "cloud_init" if info.provisioning == "cloud-init" else info.provisioning
    azl_metric(f"boot_{name}_seconds", info.provisioned_seconds, "s", better="lower")
    assert info.sshd_seconds <= info.provisioned_seconds, (
        f"{azl_host.name}: sshd answered after {info.sshd_seconds} s but {info.provisioning} "
        f"was done at {info.provisioned_seconds} s: the boot record is inconsistent"
    )
