"""The CSI VolumeSnapshot flow (kubestr csicheck style): PVC -> write -> VolumeSnapshot ->
readyToUse -> restore PVC -> read back.

Settings (``suites.cluster`` of the target): ``storage_class``, ``snapshot_class``
(required; the StorageClass provisioner must equal the VolumeSnapshotClass driver),
``snapshot_node`` (default: the first node), ``volume_size`` (default 1Gi),
``snapshot_timeout`` (default 300 s). Where the cluster declares that pods run no container
or that volumes hold no data (``cluster/limits.py``; the test bed does), the API flow is
verified and the data check is skipped, saying why.
"""

from __future__ import annotations

import secrets

import pytest

from pytest_azlinux.cluster.limits import RUN_CONTAINERS
from pytest_azlinux.cluster.workloads import ClusterPods

pytestmark = [pytest.mark.azl_cluster, pytest.mark.azl_storage, pytest.mark.azl_destructive]


def test_volume_snapshot_restore(azl_cluster: ClusterPods) -> None:
    settings = azl_cluster.settings
    if not settings.storage_class or not settings.snapshot_class:
        pytest.skip("not applicable: the target sets no suites.cluster.storage_class / "
                    "snapshot_class")
    volumes = azl_cluster.volumes(settings.storage_class, settings.snapshot_class)
    node = azl_cluster.context.node(settings.snapshot_node or sorted(azl_cluster.context.nodes)[0])
    no_data = node.cannot(RUN_CONTAINERS) or volumes.cannot_hold_data()

    # 1. the classes belong together
    provisioner, driver = volumes.classes()
    assert provisioner == driver, (
        f"StorageClass {volumes.storage_class} provisioner {provisioner} != "
        f"VolumeSnapshotClass {volumes.snapshot_class} driver {driver}")

    # 2. a volume with known data
    source = volumes.claim(role="src")
    writer = volumes.mount(source, node.name, role="csiw")
    token = secrets.token_hex(16)
    if not no_data:
        w = azl_cluster.exec(writer, ["sh", "-c", f"echo {token} > /data/azl-check && sync "
                                      "&& cat /data/azl-check"])
        assert w.rc == 0 and w.stdout.strip() == token, f"write failed: {w.stderr}"

    # 3. the snapshot is ready, and its content points back at it
    snapshot = volumes.snapshot(source)
    assert snapshot.content_points_at == (snapshot.name, snapshot.namespace), (
        f"VolumeSnapshotContent {snapshot.content} points at {snapshot.content_points_at}")
    assert snapshot.content_driver == driver

    # 4. a restore into a new claim, sized to restoreSize, holds the data
    restored = volumes.restore(snapshot)
    assert restored.data_source == snapshot.name
    reader = volumes.mount(restored, node.name, role="csir")
    if no_data:
        pytest.skip(f"node {node.name}: PVC, snapshot and restore went through the API, but "
                    f"{no_data}: no data to verify (API-level only)")
    r = azl_cluster.exec(reader, ["cat", "/data/azl-check"])
    assert r.rc == 0 and r.stdout.strip() == token, (
        f"restored volume: expected {token}, found {r.stdout.strip()!r} {r.stderr.strip()}")
