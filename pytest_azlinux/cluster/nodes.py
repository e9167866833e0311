"""Node discovery by label selector, and what a node says about itself (labels, nodeInfo)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, TargetsError
from ..facts import LABEL_NODE_IMAGE, LABEL_OS_SKU, LABEL_OS_SKU_EFFECTIVE
from .api import retry
from .limits import declared_limits

LABEL_POOL = "agentpool"
LABEL_FIPS = "kubernetes.azure.com/fips_enabled"
LABEL_MODE = "kubernetes.azure.com/mode"


@dataclass(frozen=True)
class NodeFacts:
    """A node as the API describes it: ``status.nodeInfo``, addresses and AKS labels."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    os_image: str = ""
    kernel_version: str = ""
    container_runtime: str = ""
    kubelet_version: str = ""
    architecture: str = ""
    internal_ip: str | None = None
    ready: bool = False
    unschedulable: bool = False
    limits: Mapping[str, str] = field(default_factory=dict)  # capability -> why it is missing

    @property
    def pool(self) -> str | None:
        return self.labels.get(LABEL_POOL) or self.labels.get("kubernetes.azure.com/agentpool")

    @property
    def node_image_version(self) -> str | None:
        return self.labels.get(LABEL_NODE_IMAGE)

    @property
    def os_sku(self) -> str | None:
        return self.labels.get(LABEL_OS_SKU)

    @property
    def os_sku_effective(self) -> str | None:
        return self.labels.get(LABEL_OS_SKU_EFFECTIVE)

    @property
    def fips_enabled(self) -> bool | None:
        value = self.labels.get(LABEL_FIPS)
        return None if value is None else value.lower() == "true"

    @property
    def runtime(self) -> tuple[str, str]:
        """("containerd", "2.2.4") from ``containerd://2.2.4``."""
        name, _, version = self.container_runtime.partition("://")
        return name, version

    @property
    def is_azure_linux(self) -> bool:
        return self.os_image.startswith(("Microsoft Azure Linux", "CBL-Mariner"))

    def cannot(self, capability: str) -> str | None:
        """Why this node cannot do ``capability`` (``cluster/limits.py``), or None if it can."""
        return self.limits.get(capability)


def node_facts(node: Any) -> NodeFacts:
    """NodeFacts from a V1Node (kubernetes client model) or its dict form."""
    if not isinstance(node, Mapping):
        node = node.to_dict()
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    info = status.get("node_info") or status.get("nodeInfo") or {}

    def get(*keys: str) -> str:
        return next((str(info[k]) for k in keys if info.get(k)), "")

    addresses = status.get("addresses") or []
    internal = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), None)
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    spec = node.get("spec") or {}
    return NodeFacts(
        name=meta.get("name", ""),
        labels=dict(meta.get("labels") or {}),
        os_image=get("os_image", "osImage"),
        kernel_version=get("kernel_version", "kernelVersion"),
        container_runtime=get("container_runtime_version", "containerRuntimeVersion"),
        kubelet_version=get("kubelet_version", "kubeletVersion"),
        architecture=get("architecture"),
        internal_ip=internal,
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
        limits=declared_limits(meta.get("annotations")),
    )


def discover_nodes(api: Any, selector: str, where: str) -> list[NodeFacts]:
    """Nodes matching ``selector``; an empty selection is an error naming the selector."""
    from .k8s import client

    core = client.CoreV1Api(api)
    try:
        items = retry(lambda: core.list_node(label_selector=selector), f"{where}: list nodes").items
    except ApiError as exc:
        if exc.status == 400:
            raise TargetsError(f"{where}: invalid label selector {selector!r}") from None
        raise
    nodes = sorted((node_facts(n) for n in items), key=lambda n: n.name)
    if not nodes:
        pools = sorted({
            (n.metadata.labels or {}).get(LABEL_POOL, "")
            for n in retry(lambda: core.list_node(), f"{where}: list nodes").items
        } - {""})
        known = f" (pools in this cluster: {', '.join(pools)})" if pools else ""
        raise TargetsError(
            f"{where}: no node matches label selector {selector or '(all)'!r}{known}"
        )
    return nodes
