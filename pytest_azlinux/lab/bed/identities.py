"""Who a test runs as on the bed: kubeconfigs for a service account (a TokenRequest token) and
for a user whose credential comes from an exec plugin (the bed's stand-in for kubelogin),
and the RBAC objects ``azl cluster rbac`` prints, applied as an admin would."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ...errors import BedError
from .bed import ClusterBed
from .processes import PACKAGE_PATH


def _kubeconfig(bed: ClusterBed, path: Path, user: dict[str, Any]) -> Path:
    server = bed.state().server
    if not server:
        raise BedError(f"the test bed at {bed.root} is not up")
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "azl-testbed", "cluster": {
            "server": server, "certificate-authority": str(bed.pki / "ca.crt")}}],
        "users": [{"name": "azl-runner", "user": user}],
        "contexts": [{"name": "azl-testbed", "context": {
            "cluster": "azl-testbed", "user": "azl-runner"}}],
        "current-context": "azl-testbed",
    }, sort_keys=False))
    path.chmod(0o600)
    return path


def exec_plugin_kubeconfig(
    bed: ClusterBed, path: Path, user: str, groups: Sequence[str] = (), ttl: float = 3600.0,
) -> Path:
    """A kubeconfig whose user runs the bed's credential plugin (``tokens.py``), as an AKS
    kubeconfig runs ``kubelogin get-token``: tokens for ``user``/``groups``, ``ttl`` s each."""
    args = ["-m", "pytest_azlinux.lab.bed.idp", "credential", f"--pki={bed.pki}",
            f"--user={user}", f"--ttl={ttl:g}", *(f"--group={g}" for g in groups)]
    return _kubeconfig(bed, path, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
        "args": args, "env": [{"name": "PYTHONPATH", "value": PACKAGE_PATH}],
        "interactiveMode": "Never"}})


def exec_command_kubeconfig(bed: ClusterBed, path: Path, command: str,
                            args: Sequence[str] = ()) -> Path:
    """A kubeconfig whose user runs ``command`` as its exec plugin (a broken one, in tests)."""
    return _kubeconfig(bed, path, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": command,
        "args": list(args), "interactiveMode": "Never"}})


def service_account_kubeconfig(
    bed: ClusterBed, path: Path, namespace: str, name: str, ttl: int = 3600,
) -> Path:
    """Make the service account (and its namespace) if missing; a kubeconfig with a token of
    it (TokenRequest, ``ttl`` s), as a CI system holds one."""
    from ...cluster.k8s import ApiException, client

    core = client.CoreV1Api(bed.api())
    for create, body in (
        (core.create_namespace, {"metadata": {"name": namespace}}),
        (lambda b: core.create_namespaced_service_account(namespace, b),
         {"metadata": {"name": name}}),
    ):
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise BedError(f"service account {namespace}/{name}: {exc.reason}") from None
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": ttl}}).status.token
    return _kubeconfig(bed, path, {"token": token})


def apply(bed: ClusterBed, documents: str) -> list[str]:
    """Create or replace every object of a ``kubectl apply``-able YAML stream (Namespaces
    and RBAC objects, what ``azl cluster rbac`` prints); kind/name of each."""
    from ...cluster.k8s import ApiException

    api = bed.api()
    done = []
    for body in yaml.safe_load_all(documents):
        if not body:
            continue
        kind, name = body["kind"], body["metadata"]["name"]
        try:
            _call(api, "create", body)
        except ApiException as exc:
            if exc.status != 409:
                raise BedError(f"apply {kind} {name}: {exc.status} {exc.reason}") from None
            if kind != "Namespace":  # an existing namespace is kept as it is
                _call(api, "replace", body)
        done.append(f"{kind}/{name}")
    return done


def _call(api: Any, verb: str, body: dict[str, Any]) -> None:
    from ...cluster.k8s import client

    kind, meta = body["kind"], body["metadata"]
    snake = {"Namespace": "namespace", "ClusterRole": "cluster_role",
             "ClusterRoleBinding": "cluster_role_binding", "Role": "namespaced_role",
             "RoleBinding": "namespaced_role_binding"}.get(kind)
    if snake is None:
        raise BedError(f"apply: {kind} is not a kind this helper applies")
    group = client.CoreV1Api(api) if kind == "Namespace" else client.RbacAuthorizationV1Api(api)
    method = getattr(group, f"{verb}_{snake}")
    args: list[Any] = [meta["name"]] if verb == "replace" else []
    if "namespace" in meta and kind in ("Role", "RoleBinding"):
        args.append(meta["namespace"])
    method(*args, body)
