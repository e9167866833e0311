"""Pods a suite runs on the nodes of a cluster target, and exec into them.

``ClusterPods`` (the ``azl_cluster`` fixture) creates pods pinned to nodes, labelled with the
run, and deletes them at teardown; ``PodEndpoint`` makes a pod one end of a network
measurement; ``volumes`` gives the CSI helpers of ``volumes.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError, PermissionDenied
from ..transport.protocol import CommandResult
from .context import ClusterContext
from .nodes import NodeFacts
from .pods import (
    PodProfile,
    create_pod,
    delete_pod,
    exec_once,
    pod_name,
    profile_pod_manifest,
    wait_running,
)
from .settings import ClusterSettings

if TYPE_CHECKING:
    from .volumes import Volumes


@dataclass
class ClusterPods:
    """Pod-level helpers on one cluster target; every pod is deleted at teardown."""

    context: ClusterContext
    settings: ClusterSettings = field(default_factory=ClusterSettings)  # suites.cluster
    created: list[str] = field(default_factory=list)

    @property
    def image(self) -> str:
        """The image of pods (``pod_image``, else the target's ``debug_image``)."""
        return self.settings.pod_image or self.context.config.debug_image

    @property
    def timeout(self) -> float:
        """How long a pod may take to run."""
        return self.settings.pod_timeout

    @property
    def api(self) -> Any:
        return self.context.api

    @property
    def namespace(self) -> str:
        return self.context.namespace

    @property
    def nodes(self) -> list[NodeFacts]:
        return list(self.context.nodes.values())

    def run_pod(
        self, node: str, profile: PodProfile, *, role: str = "probe",
        command: Sequence[str] = ("sleep", "86400"), host_network: bool = False,
        image: str | None = None, volumes: Mapping[str, str] | None = None,
    ) -> Any:
        """Create a pod of ``profile`` pinned to ``node`` and wait until it runs.

        ``volumes`` maps a mount path to the PersistentVolumeClaim mounted there.
        """
        ledger = self.context.ledger
        name = pod_name(f"azl-{role}-{profile[:4]}", ledger.run_id, node)
        body = profile_pod_manifest(name, node, image or self.image, profile,
                                    {"azl.io/role": role}, command, host_network)
        if volumes:
            spec = body["spec"]
            spec["containers"][0]["volumeMounts"] = [
                {"name": f"v{i}", "mountPath": path} for i, path in enumerate(volumes)]
            spec["volumes"] = [
                {"name": f"v{i}", "persistentVolumeClaim": {"claimName": claim}}
                for i, claim in enumerate(volumes.values())]
        create_pod(self.api, ledger, body)
        self.created.append(name)
        return wait_running(self.api, self.namespace, name, self.timeout)

    def exec(self, pod: str, argv: Sequence[str], *, timeout: float = 60.0,
             stdin: bytes | None = None) -> CommandResult:
        return exec_once(self.api, self.namespace, pod, argv, timeout, stdin)

    def volumes(self, storage_class: str, snapshot_class: str) -> Volumes:
        """Claims and snapshots of ``storage_class`` / ``snapshot_class`` for this run, sized
        and awaited as ``volume_size`` and ``snapshot_timeout`` say."""
        from .volumes import Volumes

        return Volumes(self, storage_class, snapshot_class, self.settings.volume_size,
                       self.settings.snapshot_timeout)

    def delete_all(self) -> None:
        denied: PermissionDenied | None = None
        for name in reversed(self.created):
            try:
                delete_pod(self.api, self.namespace, name)
            except PermissionDenied as exc:  # said, not hidden: the role lacks a rule
                denied = denied or exc
            except ClusterError:  # the run's cleanup deletes it by label
                pass
        self.created.clear()
        if denied is not None:
            raise denied


@dataclass(frozen=True)
class PodEndpoint:
    """A pod as one end of a network measurement (``network.iperf.Endpoint``)."""

    pods: ClusterPods
    pod: str
    node: str
    address: str

    @property
    def name(self) -> str:
        return self.node

    def run(self, cmd: str, *args: object, timeout: float | None = None,
            sudo: bool | None = None) -> CommandResult:
        from ..host import build_command

        return self.pods.exec(self.pod, ["sh", "-c", build_command(cmd, args)],
                              timeout=timeout or 60.0)
