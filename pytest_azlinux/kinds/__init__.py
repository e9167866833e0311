"""Target kinds: which resolver turns a target of each kind into hosts.

Resolvers are named by import path and imported on first use, so the core does not import
the lab (``azl lab``) or the Kubernetes client unless a target of that kind is selected.
A new kind is a module with a ``resolve`` function (``kinds/protocol.py``), a model in
``targets.py`` and a line here.
"""

from __future__ import annotations

import importlib

from ..errors import TargetsError
from .protocol import Resolved, Resolver

RESOLVERS: dict[str, str] = {
    "local": "pytest_azlinux.kinds.local:resolve",
    "ssh": "pytest_azlinux.kinds.ssh:resolve",
    "ansible": "pytest_azlinux.kinds.ansible:resolve",
    "lab": "pytest_azlinux.lab.target:resolve_lab_target",
    "cluster": "pytest_azlinux.cluster.target:resolve_cluster_target",
    "image": "pytest_azlinux.kinds.image:resolve",
}

__all__ = ["RESOLVERS", "Resolved", "Resolver", "resolver"]


def resolver(kind: str) -> Resolver:
    """The resolve function of ``kind``."""
    try:
        module_name, _, attr = RESOLVERS[kind].partition(":")
    except KeyError:
        raise TargetsError(f"unsupported target kind {kind!r}") from None
    found: Resolver = getattr(importlib.import_module(module_name), attr)
    return found
