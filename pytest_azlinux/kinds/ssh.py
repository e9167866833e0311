"""``kind: ssh``: a list of hosts, each reached over SSH with settings merged over defaults;
with ``ssh_config:``, hosts named by their aliases in an OpenSSH config (``ssh_config.py``)."""

from __future__ import annotations

from ..targets import AnyTarget, SshConfigTarget, SshTarget, ssh_host_specs
from .protocol import Resolved


def resolve(name: str, config: AnyTarget, *, start: bool) -> Resolved:
    if isinstance(config, SshConfigTarget):
        from . import ssh_config  # paramiko's config parser only when a target uses one

        return ssh_config.resolve(name, config, start=start)
    assert isinstance(config, SshTarget)
    return Resolved(ssh_host_specs(config, name))
