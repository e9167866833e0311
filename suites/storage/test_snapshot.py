"""Snapshot and restore on each host's scratch device: the data comes back as it was written.

These tests format a device: they are ``azl_destructive`` and run only with
``--azl-allow-destructive``. The device must be listed in the host's ``scratch_devices`` and
be free (not mounted anywhere, not held, no filesystem unless ``overwrite_existing``).
Settings: target ``suites.storage`` (``backends``, ``fio_seconds``, ``overwrite_existing``,
``seed``); see docs/storage.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.fixtures import MetricRecorder
from pytest_azlinux.host import Host
from pytest_azlinux.storage.backends import BACKENDS
from pytest_azlinux.storage.settings import StorageSettings
from pytest_azlinux.storage.suite import metrics, snapshot_flow, why_not_run

pytestmark = [pytest.mark.azl_storage, pytest.mark.azl_destructive]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_snapshot_restore(azl_host: Host, backend: str, azl_storage_settings: StorageSettings,
                          azl_cleanup: CleanupLedger, azl_metric: MetricRecorder,
                          record_property: Callable[[str, object], None]) -> None:
    """Data generated from a known seed is read back as generated, is held by the snapshot
    while the live copy changes, and is the live data again after the rollback: content,
    tree shape (links, empty directories, FIFO, sparse file) and metadata alike."""
    reason = why_not_run(azl_host, backend, azl_storage_settings)
    if reason:
        pytest.skip(reason)
    result = snapshot_flow(azl_host, backend, azl_storage_settings, azl_cleanup).run()
    for name, value, unit, better, repetitions in metrics(result):
        azl_metric(name, value, unit, better, samples=repetitions or None)
    if result.not_compared:
        record_property("azl.storage.not_compared", "; ".join(result.not_compared))
    if result.problems:
        pytest.fail(result.failure(azl_host.name), pytrace=False)
