"""Run ids, the objects a run creates in a cluster, and removing them again.

Every object a run creates carries ``azl.io/run-id=<id>`` and
``app.kubernetes.io/managed-by=pytest-azlinux``. A run writes a record (a ConfigMap named
``azl-run-<id>``) first, holding host, pid and an expiry. At the end the run deletes what it
created (the undo returned by the target resolution, also after Ctrl-C); a run that was
killed outright is swept by the next run: its record's expiry has passed, or its process is
gone on this same machine.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, ClusterError
from ..localproc import pid_alive
from .api import retry, wait_for

RUN_LABEL = "azl.io/run-id"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pytest-azlinux"
RECORD_PREFIX = "azl-run-"
DEFAULT_TTL = 6 * 3600.0
DELETE_TIMEOUT = 60.0  # waiting for a run's objects to go
NAMESPACE_GONE_TIMEOUT = 120.0  # waiting for the namespace controller to empty a namespace


def new_run_id() -> str:
    return secrets.token_hex(4)


def run_labels(run_id: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, MANAGED_LABEL: MANAGED_BY}


@dataclass(frozen=True)
class Kind:
    """One kind of namespaced object a run may create, and how to list and delete it."""

    name: str
    group: str = ""  # "" = core
    version: str = "v1"
    plural: str = ""


# Deletion order: consumers first (pods use PVCs; restored PVCs use snapshots).
NAMESPACED_KINDS = (
    Kind("Pod", plural="pods"),
    Kind("PersistentVolumeClaim", plural="persistentvolumeclaims"),
    Kind("VolumeSnapshot", "snapshot.storage.k8s.io", "v1", "volumesnapshots"),
    Kind("ConfigMap", plural="configmaps"),
)


@dataclass
class RunLedger:
    """The run's objects in one namespace: labelled at creation, deleted at the end."""

    api: Any
    namespace: str
    run_id: str = field(default_factory=new_run_id)
    ttl: float = DEFAULT_TTL

    @property
    def labels(self) -> dict[str, str]:
        return run_labels(self.run_id)

    @property
    def selector(self) -> str:
        return f"{RUN_LABEL}={self.run_id}"

    def label(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the run labels added to its metadata."""
        meta = body.setdefault("metadata", {})
        meta.setdefault("labels", {}).update(self.labels)
        return body

    def write_record(self) -> None:
        from .k8s import client

        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        body = self.label({
            "metadata": {
                "name": RECORD_PREFIX + self.run_id,
                "annotations": {
                    "azl.io/host": socket.gethostname(),
                    "azl.io/pid": str(os.getpid()),
                    "azl.io/expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
            "data": {"purpose": "pytest-azlinux run record; deleted at the end of the run"},
        })
        core = client.CoreV1Api(self.api)
        retry(lambda: core.create_namespaced_config_map(self.namespace, body),
              f"create run record in {self.namespace}")

    # -- deletion ---------------------------------------------------------------------------
    def delete_run(
        self, run_id: str | None = None, timeout: float = DELETE_TIMEOUT
    ) -> list[str]:
        """Delete every object labelled with ``run_id`` (default: this run); wait until gone.

        Returns what could not be deleted (one line each): cleanup goes on past a failure.
        """
        run_id = run_id or self.run_id
        selector = f"{RUN_LABEL}={run_id}"
        errors: list[str] = []
        for kind in NAMESPACED_KINDS:
            try:
                self._delete_kind(kind, selector)
            except ClusterError as exc:
                errors.append(f"{kind.name}: {exc}")
        if errors:  # what could not be deleted will not go: waiting would only time out
            return errors

        def gone() -> tuple[bool, str]:
            left = self.remaining(selector)
            return not left, ", ".join(left[:10]) or "none"

        try:
            wait_for(gone, f"objects of run {run_id} in namespace {self.namespace} to go",
                     timeout)
        except ClusterError as exc:
            errors.append(str(exc))
        return errors

    def remaining(self, selector: str | None = None) -> list[str]:
        """kind/name of the run's objects still present.

        A list that fails raises (``ClusterError``): "could not look" is never "nothing
        left", which would let a caller delete what another run still uses.
        """
        selector = selector or self.selector
        out = []
        for kind in NAMESPACED_KINDS:
            out += [f"{kind.name}/{name}" for name, _ in self._list(kind, selector)]
        return out

    def _list(self, kind: Kind, selector: str) -> list[tuple[str, dict[str, str]]]:
        """(name, labels) of the objects of ``kind`` that ``selector`` matches."""
        from .k8s import client

        what = f"list {kind.name} in {self.namespace}"
        try:
            if kind.group:
                custom = client.CustomObjectsApi(self.api)
                data = retry(lambda: custom.list_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural,
                    label_selector=selector), what)
                return [(i["metadata"]["name"], i["metadata"].get("labels") or {})
                        for i in data.get("items", [])]
            core = client.CoreV1Api(self.api)
            lister = getattr(core, f"list_namespaced_{_snake(kind.name)}")
            items = retry(lambda: lister(self.namespace, label_selector=selector), what).items
            return [(i.metadata.name, i.metadata.labels or {}) for i in items]
        except ApiError as exc:
            if exc.status == 404:  # the kind is not served here (no snapshot CRDs)
                return []
            raise

    def _delete_kind(self, kind: Kind, selector: str) -> None:
        """Delete every object of ``kind`` that ``selector`` matches in one request
        (deletecollection): a run over a 1000-node pool leaves 1000 pods, not to be
        deleted one round trip each."""
        from .k8s import client

        what = f"delete {kind.name} objects with {selector} in {self.namespace}"
        try:
            if kind.group:
                custom = client.CustomObjectsApi(self.api)
                retry(lambda: custom.delete_collection_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural,
                    label_selector=selector, grace_period_seconds=0), what)
                return
            core = client.CoreV1Api(self.api)
            deleter = getattr(core, f"delete_collection_namespaced_{_snake(kind.name)}")
            retry(lambda: deleter(self.namespace, label_selector=selector,
                                  grace_period_seconds=0), what)
        except ApiError as exc:
            if exc.status != 404:  # 404: the kind is not served here (no snapshot CRDs)
                raise

    # -- sweeping ---------------------------------------------------------------------------
    def stale_runs(self) -> list[str]:
        """Run ids in this namespace whose run is over (record expired, or its process gone
        on this machine, or no record at all)."""
        from .k8s import client

        core = client.CoreV1Api(self.api)
        managed = f"{MANAGED_LABEL}={MANAGED_BY}"
        # Objects first, records second: a run writes its record before any object, so a
        # run starting between the two lists has its record in the second (the other order
        # took its first objects for a run without a record, and deleted them under it).
        seen: set[str] = set()
        for kind in NAMESPACED_KINDS:
            seen.update(labels.get(RUN_LABEL, "") for _, labels in self._list(kind, managed))
        records: dict[str, Any] = {}
        for cm in retry(lambda: core.list_namespaced_config_map(
                self.namespace, label_selector=managed), "list run records").items:
            if cm.metadata.name.startswith(RECORD_PREFIX):
                records[(cm.metadata.labels or {}).get(RUN_LABEL, "")] = cm
        stale = []
        for run_id in sorted(seen | set(records)):
            if not run_id or run_id == self.run_id:
                continue
            record = records.get(run_id)
            if record is None or _record_over(record.metadata.annotations or {}):
                stale.append(run_id)
        return stale

    def sweep(self, timeout: float = DELETE_TIMEOUT) -> list[str]:
        """Delete the objects of stale runs; return the run ids swept."""
        stale = self.stale_runs()
        for run_id in stale:
            self.delete_run(run_id, timeout=timeout)
        return stale


def _record_over(annotations: dict[str, str]) -> bool:
    expires = annotations.get("azl.io/expires", "")
    try:
        when = dt.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return True
    if when < dt.datetime.now(dt.UTC):
        return True
    if annotations.get("azl.io/host") == socket.gethostname():
        pid = annotations.get("azl.io/pid", "")
        return not (pid.isdigit() and pid_alive(int(pid)))
    return False


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return out.lstrip("_")


def wait_namespace_gone(api: Any, namespace: str, timeout: float) -> None:
    from .k8s import client

    core = client.CoreV1Api(api)

    def gone() -> tuple[bool, str]:
        try:
            ns = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
        except ApiError as exc:
            if exc.status == 404:
                return True, "deleted"
            raise
        return False, f"phase {ns.status.phase}"

    wait_for(gone, f"namespace {namespace} to be deleted", timeout)
