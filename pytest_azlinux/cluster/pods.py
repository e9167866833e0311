"""Pods pinned to nodes: the helper namespace, debug pods, profile pods, exec, waits."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import ApiError, ClusterError, PermissionDenied, PodSecurityRejected
from ..transport.protocol import CommandResult
from .api import NOT_ON_CONFLICT, api_error, api_failure, exec_client, retry, wait_for
from .pod_start import PodStart
from .runs import MANAGED_BY, MANAGED_LABEL, RunLedger

PodProfile = Literal["restricted", "baseline", "privileged"]
PSA_LEVEL = "pod-security.kubernetes.io/enforce"
PROFILES: tuple[PodProfile, ...] = ("restricted", "baseline", "privileged")
_LEVEL_ORDER = {"restricted": 0, "baseline": 1, "privileged": 2}


def pod_name(prefix: str, run_id: str, node: str) -> str:
    """A DNS-1123 pod name unique per (prefix, run, node), at most 63 characters."""
    digest = hashlib.sha256(node.encode()).hexdigest()[:6]
    stem = re.sub(r"[^a-z0-9-]+", "-", node.lower()).strip("-")
    room = 63 - len(prefix) - len(run_id) - len(digest) - 3
    return f"{prefix}-{run_id}-{stem[:room].rstrip('-')}-{digest}"


def ensure_namespace(api: Any, namespace: str, level: PodProfile) -> bool:
    """Create the helper namespace (labelled for ``level``) or relabel ours; True if created.

    A namespace we did not create keeps its own Pod Security label; if it is stricter than
    ``level``, pods are refused and the refusal says so (``PodSecurityRejected``).
    """
    from .k8s import client

    core = client.CoreV1Api(api)
    labels = {PSA_LEVEL: level, "pod-security.kubernetes.io/warn": level,
              MANAGED_LABEL: MANAGED_BY}
    try:
        ns = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        body = {"metadata": {"name": namespace, "labels": labels}}
        try:
            retry(lambda: core.create_namespace(body), f"create namespace {namespace}",
                  retried=NOT_ON_CONFLICT)
            return True
        except PermissionDenied as denied:  # the shipped role: the namespace is made once
            raise PermissionDenied(
                f"helper namespace {namespace} does not exist: apply the Namespace that "
                "`azl cluster rbac` prints, or grant this", denied.message, verb=denied.verb,
                resource=denied.resource, namespace=denied.namespace, user=denied.user,
            ) from None
        except ApiError as exc2:
            if exc2.status != 409:  # 409: another run made it a moment ago
                raise
            return False
    current = (ns.metadata.labels or {})
    if current.get(MANAGED_LABEL) == MANAGED_BY and current.get(PSA_LEVEL) != level:
        retry(lambda: core.patch_namespace(namespace, {"metadata": {"labels": labels}}),
              f"label namespace {namespace}")
    return False


def namespace_level(api: Any, namespace: str) -> str:
    from .k8s import client

    core = client.CoreV1Api(api)
    ns = retry(lambda: core.read_namespace(namespace), f"read namespace {namespace}")
    return str((ns.metadata.labels or {}).get(PSA_LEVEL, "privileged"))


def debug_pod_manifest(
    name: str, node: str, image: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A privileged pod pinned to ``node`` with the host's PID namespace and root at /host
    (what ``kubectl debug node/...`` makes, plus privileged for nsenter)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**labels, "azl.io/role": "debug"}},
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "hostNetwork": True,
            "hostIPC": True,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "debug",
                "image": image,
                "command": ["sleep", "86400"],
                "securityContext": {"privileged": True},
                "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
            }],
            "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
        },
    }


def profile_pod_manifest(
    name: str, node: str, image: str, profile: PodProfile, labels: Mapping[str, str],
    command: Sequence[str] = ("sleep", "86400"), host_network: bool = False,
) -> dict[str, Any]:
    """A pod pinned to ``node`` whose security context is the most a ``profile`` allows."""
    container: dict[str, Any] = {"name": "main", "image": image, "command": list(command)}
    spec: dict[str, Any] = {
        "nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
        "tolerations": [{"operator": "Exists"}], "containers": [container],
    }
    if profile == "restricted":
        container["securityContext"] = {
            "allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        }
    elif profile == "privileged":
        container["securityContext"] = {"privileged": True}
        spec["hostPID"] = True
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {**labels, "azl.io/profile": profile}},
            "spec": spec}


def create_pod(api: Any, ledger: RunLedger, body: dict[str, Any]) -> str:
    """Create a pod labelled for the run; a Pod Security refusal raises PodSecurityRejected."""
    from .k8s import client

    core = client.CoreV1Api(api)
    ledger.label(body)
    name = body["metadata"]["name"]
    try:
        retry(lambda: core.create_namespaced_pod(ledger.namespace, body),
              f"create pod {name} in {ledger.namespace}", retried=NOT_ON_CONFLICT)
    except ApiError as exc:
        status, message = exc.status, exc.message
        if (status == 403 and "PodSecurity" in message) or "violates PodSecurity" in message:
            level = _safe_level(api, ledger.namespace)
            raise PodSecurityRejected(
                f"pod {name} on node {body['spec'].get('nodeName')} refused by Pod Security "
                f"admission in namespace {ledger.namespace} (enforce={level}): {message}"
            ) from None
        if status != 409:
            raise
    return str(name)


def _safe_level(api: Any, namespace: str) -> str:
    try:
        return namespace_level(api, namespace)
    except ClusterError:
        return "unknown"


def wait_running(
    api: Any, namespace: str, name: str, timeout: float, node: str | None = None
) -> Any:
    """Wait until the pod runs with every container ready; fail as soon as it cannot (the pod
    ended, or a container waits for a reason only a change can end: ``pod_start.py``), with
    the kubelet's message. ``node``: where it was pinned (else read from the pod, one more
    request)."""
    from .k8s import client

    core = client.CoreV1Api(api)
    pod: list[Any] = [None]
    start = PodStart()

    def check() -> tuple[bool, str]:
        p = retry(lambda: core.read_namespaced_pod(name, namespace), f"read pod {name}")
        pod[0] = p
        phase = p.status.phase or "Pending"
        if phase in ("Failed", "Succeeded"):
            raise ClusterError(f"pod {namespace}/{name} ended ({phase}) before it could be used: "
                               f"{p.status.message or p.status.reason or ''}")
        blocker = start.blocker(api.sanitize_for_serialization(p))  # the API's JSON
        if blocker:  # known now: waiting out the timeout would only hide the kubelet's word
            raise ClusterError(f"pod {namespace}/{name} on node {node} cannot start: {blocker}")
        waiting = [
            f"{c.name}: {c.state.waiting.reason}"
            for c in p.status.container_statuses or [] if c.state and c.state.waiting
        ]
        ready = phase == "Running" and all(c.ready for c in p.status.container_statuses or [])
        return ready, f"phase {phase}" + (f" ({', '.join(waiting)})" if waiting else "")

    node = node or _node_of(api, namespace, name)
    wait_for(check, f"pod {namespace}/{name} on node {node} to run", timeout)
    return pod[0]


def _node_of(api: Any, namespace: str, name: str) -> str:
    from .k8s import client

    core = client.CoreV1Api(api)
    try:
        pod = retry(lambda: core.read_namespaced_pod(name, namespace), f"read pod {name}")
    except ClusterError:
        return "?"
    return str(pod.spec.node_name)


def exec_once(
    api: Any, namespace: str, name: str, argv: Sequence[str], timeout: float,
    stdin: bytes | None = None, container: str | None = None,
) -> CommandResult:
    """Run ``argv`` in a pod through the exec API; exit code from the status channel."""
    import time

    from kubernetes.stream import stream
    from websocket import WebSocketException

    from .k8s import ApiException, client

    core = client.CoreV1Api(exec_client(api))
    start = time.monotonic()
    kwargs: dict[str, Any] = {"container": container} if container else {}
    where = f"exec in pod {namespace}/{name}"
    try:
        ws = stream(
            core.connect_get_namespaced_pod_exec, name, namespace, command=list(argv),
            stdin=stdin is not None, stdout=True, stderr=True, tty=False,
            _preload_content=False, binary=True, **kwargs,
        )
    except ApiException as exc:  # the client wraps every failed handshake in one
        raise api_failure(where, *api_error(exc),
                          attempted=("create", "pods/exec", namespace)) from None
    out, err = bytearray(), bytearray()
    try:
        if stdin is not None:
            ws.write_stdin(stdin)
            ws.close_channel(0) if hasattr(ws, "close_channel") else None
        deadline = start + timeout
        while ws.is_open():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClusterError(f"{where} timed out after {timeout:g} s: {list(argv)}")
            ws.update(timeout=min(remaining, 1.0))
            out += ws.read_channel(1) or b""
            err += ws.read_channel(2) or b""
        out += ws.read_channel(1) or b""
        err += ws.read_channel(2) or b""
        rc = _returncode(ws)
    except (WebSocketException, OSError) as exc:
        raise ClusterError(f"{where}: stream failed: {exc}") from None
    finally:
        ws.close()
    return CommandResult(" ".join(argv), rc, bytes(out), bytes(err), time.monotonic() - start)


def _returncode(ws: Any) -> int:
    import yaml

    raw = ws.read_channel(3)
    if not raw:
        return -1
    status = yaml.safe_load(raw.decode() if isinstance(raw, bytes) else raw)
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "-1"))
    message = str(status.get("message", status))
    # kwok (the test bed's kubelet) wraps the exit status into an internal error message
    m = re.search(r"error executing command in container: .*exit status (\d+)$", message)
    if m:
        return int(m.group(1))
    raise ClusterError(f"exec failed: {message}")


def delete_pod(api: Any, namespace: str, name: str, timeout: float = 60.0) -> None:
    """Delete a pod and wait up to ``timeout`` until it is gone (0: do not wait)."""
    from .k8s import client

    core = client.CoreV1Api(api)
    try:
        retry(lambda: core.delete_namespaced_pod(name, namespace, grace_period_seconds=0),
              f"delete pod {name}")
    except ApiError as exc:
        if exc.status == 404:
            return
        raise
    if timeout <= 0:
        return

    def gone() -> tuple[bool, str]:
        try:
            retry(lambda: core.read_namespaced_pod(name, namespace), f"read pod {name}")
        except ApiError as exc:
            if exc.status == 404:
                return True, "deleted"
            raise
        return False, "still present"

    wait_for(gone, f"pod {namespace}/{name} to be deleted", timeout)


def level_allows(level: str, profile: PodProfile) -> bool:
    """Whether a namespace enforcing ``level`` admits pods of ``profile``."""
    return _LEVEL_ORDER.get(level, 2) >= _LEVEL_ORDER[profile]
