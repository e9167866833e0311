"""Snapshot and restore on each host's scratch device, with the data verified file by file.

These tests format a device: they are ``azl_destructive`` and run only with
``--azl-allow-destructive``. The device must be listed in the host's ``scratch_devices``.
Settings (target ``suites.storage``): ``backends`` (default both), ``fio_seconds`` (background
load during the snapshot; 0 = none).
"""

from __future__ import annotations

import pytest

from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.storage.backends import BACKENDS
from pytest_azlinux.storage.flow import SnapshotFlow

pytestmark = [pytest.mark.azl_storage, pytest.mark.azl_destructive]


@pytest.mark.parametrize("backend_name", sorted(BACKENDS))
def test_snapshot_restore(azl_host: Host, azl_target: SelectedTarget, backend_name: str,
                          azl_cleanup: CleanupLedger, azl_metric: MetricRecorder) -> None:
    settings = azl_target.settings("storage")
    if backend_name not in settings.get("backends", sorted(BACKENDS)):
        pytest.skip(f"backend {backend_name} not selected in suites.storage.backends")
    if not azl_host.spec.scratch_devices:
        pytest.skip(f"no scratch device named for host {azl_host.name} (scratch_devices)")
    backend = BACKENDS[backend_name]()
    reason = backend.unavailable(azl_host)
    if reason:
        pytest.skip(f"{backend_name} on {azl_host.name}: {reason}")
    flow = SnapshotFlow(azl_host, azl_host.spec.scratch_devices[0], backend, azl_cleanup,
                        fio_seconds=int(settings.get("fio_seconds", 0)))
    result = flow.run()
    azl_metric("snapshot_seconds", result.snapshot_seconds, "s", "lower")
    azl_metric("restore_seconds", result.restore_seconds, "s", "lower")
    if result.fio is not None:
        azl_metric("fio_read_iops", result.fio.read_iops, "IOPS", "higher")
        azl_metric("fio_write_iops", result.fio.write_iops, "IOPS", "higher")
        if result.fio.read_lat_ms is not None:
            azl_metric("fio_read_lat_ms", result.fio.read_lat_ms, "ms", "lower")
        if result.fio.write_lat_ms is not None:
            azl_metric("fio_write_lat_ms", result.fio.write_lat_ms, "ms", "lower")
    if result.problems:
        pytest.fail(f"{azl_host.name} {result.device} ({backend_name}): data not preserved:\n  "
                    + "\n  ".join(result.problems[:20]), pytrace=False)
