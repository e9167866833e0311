"""``kind: local``: this machine, commands run as child processes."""

from __future__ import annotations

from ..targets import AnyTarget, LocalTarget, local_host_specs
from .protocol import Resolved


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, LocalTarget)
    return Resolved(local_host_specs(config, name))
