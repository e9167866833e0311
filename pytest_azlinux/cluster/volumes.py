"""The CSI snapshot flow's mechanics: claims, pods that mount them, VolumeSnapshots, restores.

Every object is labelled with the run (the run's cleanup deletes it, also after Ctrl-C).
Findings (a class mismatch, a content that points elsewhere) are left to the suite's
asserts; what cannot be looked at (a timeout, an API error) is a ``ClusterError``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError
from .api import NOT_ON_CONFLICT, retry, wait_for
from .limits import VOLUME_DATA, declared_limits

if TYPE_CHECKING:
    from .workloads import ClusterPods

SNAPSHOT_GROUP, SNAPSHOT_VERSION = "snapshot.storage.k8s.io", "v1"


@dataclass(frozen=True)
class Snapshot:
    """A VolumeSnapshot that is readyToUse, with the content bound to it."""

    name: str
    namespace: str
    restore_size: str | None
    content: str  # the VolumeSnapshotContent's name
    content_driver: str
    content_points_at: tuple[str, str]  # (name, namespace) of the content's volumeSnapshotRef


@dataclass(frozen=True)
class Claim:
    """A PersistentVolumeClaim that is Bound."""

    name: str
    volume: str
    data_source: str | None  # the snapshot it was restored from


@dataclass
class Volumes:
    """Claims of one StorageClass and snapshots of one VolumeSnapshotClass, for one run."""

    pods: ClusterPods
    storage_class: str
    snapshot_class: str
    size: str
    timeout: float

    @property
    def namespace(self) -> str:
        return self.pods.namespace

    def _name(self, role: str) -> str:
        return f"azl-{role}-{self.pods.context.ledger.run_id}-{secrets.token_hex(2)}"

    # -- the classes ----------------------------------------------------------------------
    def classes(self) -> tuple[str, str]:
        """(StorageClass provisioner, VolumeSnapshotClass driver): they must be equal."""
        from .k8s import client

        storage = client.StorageV1Api(self.pods.api)
        custom = client.CustomObjectsApi(self.pods.api)
        sc = retry(lambda: storage.read_storage_class(self.storage_class),
                   f"read StorageClass {self.storage_class}")
        vsc = retry(lambda: custom.get_cluster_custom_object(
            SNAPSHOT_GROUP, SNAPSHOT_VERSION, "volumesnapshotclasses", self.snapshot_class),
            f"read VolumeSnapshotClass {self.snapshot_class}")
        return str(sc.provisioner), str(vsc["driver"])

    def cannot_hold_data(self) -> str | None:
        """Why volumes of this StorageClass hold no data (declared on it), or None."""
        from .k8s import client

        storage = client.StorageV1Api(self.pods.api)
        sc = retry(lambda: storage.read_storage_class(self.storage_class),
                   f"read StorageClass {self.storage_class}")
        return declared_limits(sc.metadata.annotations).get(VOLUME_DATA)

    # -- claims ---------------------------------------------------------------------------
    def claim(self, *, role: str = "pvc", size: str | None = None,
              restore_from: Snapshot | None = None) -> Claim:
        """A new claim (restored from a snapshot when given), once it is Bound."""
        from .k8s import client

        name = self._name(role)
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"], "storageClassName": self.storage_class,
            "resources": {"requests": {"storage": size or self.size}},
        }
        if restore_from is not None:
            spec["dataSource"] = {"kind": "VolumeSnapshot", "apiGroup": SNAPSHOT_GROUP,
                                  "name": restore_from.name}
        body = self.pods.context.ledger.label({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name}, "spec": spec})
        core = client.CoreV1Api(self.pods.api)
        retry(lambda: core.create_namespaced_persistent_volume_claim(self.namespace, body),
              f"create PVC {self.namespace}/{name}", retried=NOT_ON_CONFLICT)
        pvc: list[Any] = [None]

        def bound() -> tuple[bool, str]:
            pvc[0] = retry(lambda: core.read_namespaced_persistent_volume_claim(
                name, self.namespace), f"read PVC {self.namespace}/{name}")
            phase = pvc[0].status.phase
            return phase == "Bound", f"phase {phase}"

        wait_for(bound, f"PVC {self.namespace}/{name} to be Bound", self.timeout)
        source = pvc[0].spec.data_source
        return Claim(name, str(pvc[0].spec.volume_name), source.name if source else None)

    def mount(self, claim: Claim, node: str, *, role: str) -> str:
        """A running pod on ``node`` with ``claim`` mounted at /data; its name (one pod per
        role and node: give each mount its own role)."""
        pod = self.pods.run_pod(node, "baseline", role=role, volumes={"/data": claim.name})
        return str(pod.metadata.name)

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self, claim: Claim) -> Snapshot:
        """A VolumeSnapshot of ``claim``, once readyToUse, with its bound content."""
        from .k8s import client

        custom = client.CustomObjectsApi(self.pods.api)
        name = self._name("snap")
        where = f"VolumeSnapshot {self.namespace}/{name}"
        body = self.pods.context.ledger.label({
            "apiVersion": f"{SNAPSHOT_GROUP}/{SNAPSHOT_VERSION}", "kind": "VolumeSnapshot",
            "metadata": {"name": name},
            "spec": {"volumeSnapshotClassName": self.snapshot_class,
                     "source": {"persistentVolumeClaimName": claim.name}}})
        retry(lambda: custom.create_namespaced_custom_object(
            SNAPSHOT_GROUP, SNAPSHOT_VERSION, self.namespace, "volumesnapshots", body),
            f"create {where}", retried=NOT_ON_CONFLICT)
        status: dict[str, Any] = {}

        def ready() -> tuple[bool, str]:
            vs = retry(lambda: custom.get_namespaced_custom_object(
                SNAPSHOT_GROUP, SNAPSHOT_VERSION, self.namespace, "volumesnapshots", name),
                f"read {where}")
            status.clear()
            status.update(vs.get("status") or {})
            if status.get("error"):
                raise ClusterError(f"{where}: {status['error']}")
            return bool(status.get("readyToUse")), f"status {status or 'none yet'}"

        wait_for(ready, f"{where} to be readyToUse", self.timeout)
        content_name = str(status["boundVolumeSnapshotContentName"])
        content = retry(lambda: custom.get_cluster_custom_object(
            SNAPSHOT_GROUP, SNAPSHOT_VERSION, "volumesnapshotcontents", content_name),
            f"read VolumeSnapshotContent {content_name}")
        ref = content["spec"]["volumeSnapshotRef"]
        return Snapshot(name, self.namespace, status.get("restoreSize"), content_name,
                        str(content["spec"]["driver"]), (ref["name"], ref["namespace"]))

    def restore(self, snapshot: Snapshot) -> Claim:
        """A new claim restored from ``snapshot``, sized to its restoreSize, once Bound."""
        return self.claim(role="rst", size=snapshot.restore_size or self.size,
                          restore_from=snapshot)
