"""What the transports and fixtures of one resolved cluster target share in this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ClusterError
from ..targets import ClusterTarget
from .nodes import NodeFacts
from .runs import RunLedger

POD_TIMEOUT = 120.0  # a pod must run within this (image pull, scheduling)


@dataclass
class ClusterContext:
    """A cluster target resolved for this run: its API client, run ledger and nodes.

    Made by ``target.resolve_cluster_target`` and handed, as a value, to each
    ``KubeTransport`` of the target and to the ``azl_node``/``azl_cluster`` fixtures
    (through ``SelectedTarget.context``).
    """

    target_name: str
    config: ClusterTarget
    api: Any
    ledger: RunLedger
    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    pod_timeout: float = POD_TIMEOUT

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def node(self, name: str) -> NodeFacts:
        try:
            return self.nodes[name]
        except KeyError:
            raise ClusterError(
                f"cluster target {self.target_name}: node {name} was not discovered "
                f"(nodes: {', '.join(sorted(self.nodes)) or 'none'})") from None
