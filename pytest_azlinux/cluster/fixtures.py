"""Fixtures for cluster targets: ``azl_node`` (the node behind ``azl_host``) and
``azl_cluster`` (pods pinned to nodes, labelled with the run id, deleted at teardown)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..errors import ClusterError
from ..host import Host
from ..session import SelectedTarget
from ..transport.protocol import CommandResult
from .api import retry
from .nodes import NodeFacts, node_facts
from .pods import (
    PodProfile,
    create_pod,
    delete_pod,
    exec_once,
    pod_name,
    profile_pod_manifest,
    wait_running,
)
from .target import ClusterContext


@dataclass
class ClusterPods:
    """Pod-level helpers on one cluster target; every pod is deleted at teardown."""

    context: ClusterContext
    image: str
    timeout: float = 120.0
    created: list[str] = field(default_factory=list)

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
        image: str | None = None,
    ) -> Any:
        """Create a pod of ``profile`` pinned to ``node`` and wait until it runs."""
        ledger = self.context.ledger
        name = pod_name(f"azl-{role}-{profile[:4]}", ledger.run_id, node)
        body = profile_pod_manifest(name, node, image or self.image, profile,
                                    {"azl.io/role": role}, command, host_network)
        create_pod(self.api, ledger, body)
        self.created.append(name)
        return wait_running(self.api, self.namespace, name, self.timeout)

    def exec(self, pod: str, argv: Sequence[str], *, timeout: float = 60.0,
             stdin: bytes | None = None) -> CommandResult:
        return exec_once(self.api, self.namespace, pod, argv, timeout, stdin)

    def custom(self, group: str, version: str, plural: str) -> _Custom:
        return _Custom(self, group, version, plural)

    def delete_all(self) -> None:
        for name in reversed(self.created):
            with contextlib.suppress(Exception):  # the run's cleanup deletes it by label
                delete_pod(self.api, self.namespace, name)
        self.created.clear()


@dataclass
class _Custom:
    """Namespaced custom objects (VolumeSnapshots...) created with the run's labels."""

    pods: ClusterPods
    group: str
    version: str
    plural: str

    def create(self, body: dict[str, Any]) -> Mapping[str, Any]:
        from .k8s import client

        api = client.CustomObjectsApi(self.pods.api)
        self.pods.context.ledger.label(body)
        result: Mapping[str, Any] = retry(lambda: api.create_namespaced_custom_object(
            self.group, self.version, self.pods.namespace, self.plural, body),
            f"create {self.plural} {body['metadata']['name']}", retried={429, 500, 503})
        return result

    def get(self, name: str) -> Mapping[str, Any]:
        from .k8s import client

        api = client.CustomObjectsApi(self.pods.api)
        result: Mapping[str, Any] = api.get_namespaced_custom_object(
            self.group, self.version, self.pods.namespace, self.plural, name)
        return result


@pytest.fixture
def azl_node(azl_host: Host, azl_target: SelectedTarget) -> NodeFacts:
    """The Kubernetes node behind ``azl_host`` (labels, nodeInfo); skips on non-cluster hosts."""
    if azl_target.kind != "cluster":
        pytest.skip(f"{azl_host.name} is not a Kubernetes node (target kind {azl_target.kind})")
    context = azl_target.context
    node = azl_host.spec.node or azl_host.name
    if context is not None and node in context.nodes:
        known: NodeFacts = context.nodes[node]
        return known
    return node_facts({"metadata": {"name": node, "labels": dict(azl_host.spec.labels)}})


@pytest.fixture
def azl_cluster(azl_target: SelectedTarget) -> Iterator[ClusterPods]:
    """Pod-level access to a cluster target: pods pinned to nodes, deleted at teardown."""
    if azl_target.kind != "cluster":
        pytest.skip(f"target {azl_target.name} is not a cluster (kind {azl_target.kind})")
    context = azl_target.context
    if context is None:
        raise ClusterError(f"cluster target {azl_target.name} is not resolved in this process")
    settings = azl_target.settings("cluster")
    pods = ClusterPods(context, str(settings.get("pod_image", context.config.debug_image)),
                       float(settings.get("pod_timeout", 120)))
    yield pods
    pods.delete_all()


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


def is_simulated(node: NodeFacts | Mapping[str, Any]) -> bool:
    """Whether a node is a test-bed node played by kwok (its pods run no containers)."""
    labels = node.labels if isinstance(node, NodeFacts) else node
    return labels.get("type") == "kwok"
