"""A ``kind: cluster`` target resolved to one host per node of the pool.

Resolution lists the nodes matching the pool/selector (an empty selection is an error),
prepares the helper namespace (labelled for the Pod Security level debug pods need),
writes this run's record and sweeps what stale runs left behind. It returns the hosts, a
``ClusterContext`` (handed to the target's transports and fixtures as a value) and the undo
that deletes everything the run created.
"""

from __future__ import annotations

import logging

from ..errors import ApiError, ClusterError, TargetsError
from ..kinds.protocol import Resolved
from ..settings import parse
from ..targets import ClusterTarget, HostSpec, merge_ssh_spec
from .api import NOT_ON_CONFLICT, load_client, retry, set_rate_limit
from .context import ClusterContext
from .nodes import NodeFacts, discover_nodes
from .pods import PodProfile, ensure_namespace
from .runs import MANAGED_BY, MANAGED_LABEL, NAMESPACE_GONE_TIMEOUT, RunLedger, wait_namespace_gone
from .settings import ClusterSettings

log = logging.getLogger("pytest_azlinux.cluster")


def resolve_cluster_target(name: str, config: ClusterTarget, *, start: bool) -> Resolved:
    """Hosts of the nodes of ``config``'s pool, their shared context, and the run's cleanup.

    ``start`` is True on the controlling process: it prepares the namespace and sweeps stale
    runs; workers only discover nodes and record their own run.
    """
    where = f"target {name!r}"
    selector = config.label_selector()
    if not selector:
        raise TargetsError(f"{where}: set 'pool' or 'selector' (refusing to select every node)")
    settings = parse(ClusterSettings, config.suites.get("cluster"), name)
    api = load_client(config.kubeconfig, config.context, where)
    set_rate_limit(api, settings.api_qps, settings.api_burst)
    nodes = discover_nodes(api, selector, where)
    ledger = RunLedger(api, config.namespace)
    level: PodProfile = "privileged" if config.access == "debug-pod" else "baseline"
    if start:
        ensure_namespace(api, config.namespace, level)
        swept = ledger.sweep()
        if swept:
            log.warning("%s: removed objects of stale runs %s", where, ", ".join(swept))
    _join_namespace(api, config.namespace, level, ledger)
    context = ClusterContext(name, config, api, ledger, {n.name: n for n in nodes},
                             pod_timeout=settings.pod_timeout)
    specs = [_host_spec(name, config, n) for n in nodes]

    def undo() -> None:
        errors = ledger.delete_run()
        if start and not errors:
            errors += _drop_namespace_if_unused(api, config.namespace, ledger)
        if errors:
            raise ClusterError(f"{where}: cleanup left objects behind: {'; '.join(errors)}")

    return Resolved(specs, context=context, undo=undo,
                    undo_what=f"delete what this run created for cluster target {name}")


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


# Runs share the helper namespace; the last one to end deletes it (if a run made it). A run
# joins by writing its record and then touching the namespace (an annotation); a run that
# ends reads the namespace, finds no other record and deletes it on the condition that it
# has not changed since that read. So a run that joins while another decides either is seen
# (its record) or makes the delete fail (its touch), or, joining just after the delete, finds
# the namespace going, waits until it is gone and joins a new one.
JOINED_ANNOTATION = "azl.io/last-joined"
JOIN_ATTEMPTS = 3


def _join_namespace(api: object, namespace: str, level: PodProfile, ledger: RunLedger) -> None:
    from .k8s import client

    core = client.CoreV1Api(api)
    touch = {"metadata": {"annotations": {JOINED_ANNOTATION: ledger.run_id}}}
    for attempt in range(1, JOIN_ATTEMPTS + 1):
        try:
            ledger.write_record()
            ns = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
            if ns.metadata.deletion_timestamp is None:
                if (ns.metadata.labels or {}).get(MANAGED_LABEL) != MANAGED_BY:
                    return  # the user's namespace: no run deletes it, and it is not touched
                ns = retry(lambda: core.patch_namespace(namespace, touch),
                           f"join namespace {namespace}")
                if ns.metadata.deletion_timestamp is None:
                    return
        except ApiError as exc:
            if not _namespace_going(exc) or attempt == JOIN_ATTEMPTS:
                raise
        # another run's end is deleting the namespace: wait until it is gone, make it again
        wait_namespace_gone(api, namespace, NAMESPACE_GONE_TIMEOUT)
        ensure_namespace(api, namespace, level)
    raise ClusterError(f"namespace {namespace}: deleted under this run {JOIN_ATTEMPTS} times")


def _namespace_going(exc: ApiError) -> bool:
    """The namespace is being deleted (403 "being terminated") or is gone (404)."""
    return exc.status == 404 or (exc.status == 403 and "being terminated" in exc.message)


def _drop_namespace_if_unused(api: object, namespace: str, ledger: RunLedger) -> list[str]:
    """Delete the helper namespace when we made it (managed label) and no other live run
    uses it; a namespace the user made is left alone. When it cannot tell (a list failed),
    it leaves the namespace and says why."""
    from .k8s import client

    core = client.CoreV1Api(api)
    try:
        try:
            ns = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise
        if (ns.metadata.labels or {}).get(MANAGED_LABEL) != MANAGED_BY:
            return []
        ledger.sweep()
        if ledger.remaining(f"{MANAGED_LABEL}={MANAGED_BY}"):
            return []  # another run is still working there
        unchanged = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=ns.metadata.resource_version))
        try:
            retry(lambda: core.delete_namespace(namespace, body=unchanged),
                  f"delete namespace {namespace}", retried=NOT_ON_CONFLICT)
        except ApiError as exc:
            if exc.status == 404:
                return []
            if exc.status != 409:
                raise
            # changed since the read: a run joined (it keeps the namespace), or another
            # run's end is deleting it
            now = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
            if now.metadata.deletion_timestamp is None:
                return []
        wait_namespace_gone(api, namespace, NAMESPACE_GONE_TIMEOUT)
    except ClusterError as exc:
        return [f"namespace {namespace} kept: {exc}"]
    return []
