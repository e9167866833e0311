"""``kind: ssh``: a list of hosts, each reached over SSH with settings merged over defaults."""

from __future__ import annotations

from ..targets import AnyTarget, SshTarget, ssh_host_specs
from .protocol import Resolved


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    assert isinstance(config, SshTarget)
    return Resolved(ssh_host_specs(config, name))
