"""What the storage suite's test calls: whether a backend runs on a host, the flow for the
target's settings, and the metrics of a result."""

from __future__ import annotations

from typing import Literal

from ..cleanup import CleanupLedger
from ..host import Host
from .backends import BACKENDS
from .dataset import DatasetSpec
from .flow import FlowResult, SnapshotFlow
from .settings import StorageSettings

# (name, value, unit, better, repetitions): fio's IOPS come with one value per second
Metric = tuple[str, float, str, Literal["higher", "lower"], tuple[float, ...]]


def why_not_run(host: Host, backend: str, settings: StorageSettings) -> str | None:
    """Why ``backend`` does not run on ``host`` (a skip reason), or None."""
    if backend not in settings.backends:
        return f"backend {backend} not selected in suites.storage.backends"
    if not host.spec.scratch_devices:
        return f"no scratch device named for host {host.name} (scratch_devices)"
    unavailable = BACKENDS[backend]().unavailable(host)
    return f"{backend} on {host.name}: {unavailable}" if unavailable else None


def snapshot_flow(host: Host, backend: str, settings: StorageSettings,
                  ledger: CleanupLedger) -> SnapshotFlow:
    """The flow on the host's first scratch device, as the settings ask."""
    spec = DatasetSpec() if settings.seed is None else DatasetSpec(seed=settings.seed)
    return SnapshotFlow(host, host.spec.scratch_devices[0], BACKENDS[backend](), ledger,
                        spec=spec, fio_seconds=settings.fio_seconds,
                        overwrite_existing=settings.overwrite_existing)


def metrics(result: FlowResult) -> list[Metric]:
    """``(name, value, unit, better, repetitions)`` of what the flow measured."""
    out: list[Metric] = []
    if result.snapshot_seconds is not None:
        out.append(("snapshot_seconds", result.snapshot_seconds, "s", "lower", ()))
    if result.restore_seconds is not None:
        out.append(("restore_seconds", result.restore_seconds, "s", "lower", ()))
    if result.fio is not None:
        out += [("fio_read_iops", result.fio.read_iops, "IOPS", "higher",
                 result.fio.read_iops_samples),
                ("fio_write_iops", result.fio.write_iops, "IOPS", "higher",
                 result.fio.write_iops_samples)]
        if result.fio.read_lat_ms is not None:
            out.append(("fio_read_lat_ms", result.fio.read_lat_ms, "ms", "lower", ()))
        if result.fio.write_lat_ms is not None:
            out.append(("fio_write_lat_ms", result.fio.write_lat_ms, "ms", "lower", ()))
    return out
