"""A ``kind: cluster`` target resolved to one host per node of the pool.

Resolution lists the nodes matching the pool/selector (an empty selection is an error),
prepares the helper namespace (labelled for the Pod Security level debug pods need),
writes this run's record, sweeps what stale runs left behind, and registers a
``ClusterContext`` that ``transport/kube.py`` and the pod-level fixtures use. The undo it
returns deletes everything the run created.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import TargetsError
from ..kinds.protocol import Resolved
from ..targets import AnyTarget, ClusterTarget, HostSpec, merge_ssh_spec
from .api import load_client
from .nodes import NodeFacts, discover_nodes
from .pods import ensure_namespace
from .runs import RunLedger, wait_namespace_gone

log = logging.getLogger("pytest_azlinux.cluster")
_CONTEXTS: dict[str, ClusterContext] = {}
_LOCK = threading.Lock()


@dataclass
class ClusterContext:
    """What the transports and fixtures of one cluster target share in this process."""

    target_name: str
    config: ClusterTarget
    api: Any
    ledger: RunLedger
    nodes: dict[str, NodeFacts] = field(default_factory=dict)
    pod_timeout: float = 120.0

    @property
    def namespace(self) -> str:
        return self.config.namespace


def get_context(target_name: str) -> ClusterContext | None:
    with _LOCK:
        return _CONTEXTS.get(target_name)


def resolve_cluster_target(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    """Hosts of the nodes of ``config``'s pool, and the undo that cleans the run up.

    ``start`` is True on the controlling process: it prepares the namespace and sweeps stale
    runs; workers only discover nodes and record their own run.
    """
    assert isinstance(config, ClusterTarget)
    where = f"target {name!r}"
    selector = config.label_selector()
    if not selector:
        raise TargetsError(f"{where}: set 'pool' or 'selector' (refusing to select every node)")
    api = load_client(config.kubeconfig, config.context, where)
    nodes = discover_nodes(api, selector, where)
    ledger = RunLedger(api, config.namespace)
    if start:
        ensure_namespace(
            api, config.namespace, "privileged" if config.access == "debug-pod" else "baseline")
        swept = ledger.sweep()
        if swept:
            log.warning("%s: removed objects of stale runs %s", where, ", ".join(swept))
    ledger.write_record()
    context = ClusterContext(name, config, api, ledger, {n.name: n for n in nodes})
    with _LOCK:
        _CONTEXTS[name] = context
    specs = [_host_spec(name, config, n) for n in nodes]

    def undo() -> None:
        with _LOCK:
            _CONTEXTS.pop(name, None)
        errors = ledger.delete_run()
        if start and not errors:
            errors += _drop_namespace_if_unused(api, config.namespace, ledger)
        if errors:
            raise RuntimeError(f"{where}: cleanup left objects behind: {'; '.join(errors)}")

    return Resolved(specs, context, undo, f"clean up cluster target {name}")


def _host_spec(target_name: str, config: ClusterTarget, node: NodeFacts) -> HostSpec:
    labels = dict(node.labels)
    if config.access == "ssh":
        if not node.internal_ip:
            raise TargetsError(f"target {target_name!r}: node {node.name} has no InternalIP")
        return merge_ssh_spec(
            name=node.name, address=node.internal_ip, target=target_name, layers=(config.ssh,),
            profile=config.profile, node=node.name, labels=labels,
        )
    return HostSpec(
        name=node.name, target=target_name, access="kube",
        address=node.internal_ip or node.name, profile=config.profile,
        node=node.name, labels=labels,
    )


def _drop_namespace_if_unused(api: Any, namespace: str, ledger: RunLedger) -> list[str]:
    """Delete the helper namespace when we made it (managed label) and no other live run
    uses it; a namespace the user made is left alone."""
    from .k8s import ApiException, client
    from .runs import MANAGED_BY, MANAGED_LABEL

    core = client.CoreV1Api(api)
    try:
        try:
            ns = core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        if (ns.metadata.labels or {}).get(MANAGED_LABEL) != MANAGED_BY:
            return []
        ledger.sweep()
        if ledger.remaining(f"{MANAGED_LABEL}={MANAGED_BY}"):
            return []  # another run is still working there
        core.delete_namespace(namespace)
        wait_namespace_gone(api, namespace, 120.0)
    except Exception as exc:
        return [f"namespace {namespace}: {exc}"]
    return []
