"""Targets of kind ``lab``: the core asks for hosts; the lab is started when needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import TargetsError
from ..kinds.protocol import Resolved
from ..targets import LabTarget, SshTarget, load_targets, ssh_host_specs
from .lab import Lab
from .targetsfile import TARGET_NAME


def resolve_lab_target(name: str, config: LabTarget, *, start: bool) -> Resolved:
    """The lab's hosts as target ``name``; the context is the ``Lab``; with an undo when
    this call started the lab.

    The lab is ``config.lab``, else ``$AZL_LAB_NAME``, else ``azl`` (``names.lab_name``).
    If it is not up: with ``start`` (the pytest controller) bring it up with the target's
    hosts/variants/disk_size and return an undo that takes it down (unless ``keep``);
    without (an xdist worker) that is an error. A lab that is already up is used as it is
    and left running.
    """
    lab = Lab(config.lab)
    undo: Callable[[], None] | None = None
    if not lab.is_up():
        if not start:
            raise TargetsError(
                f"target {name!r}: lab {lab.name} is not up (start it with "
                f"`azl lab up --name {lab.name}`)"
            )
        try:
            lab.up(config.hosts, config.variants, config.disk_size)
        except BaseException:  # also Ctrl-C during bring-up: leave nothing half made
            lab.down()
            raise
        undo = None if config.keep else lab.down
    targets = load_targets(lab.targets_file)
    ssh = targets.get(TARGET_NAME)
    if not isinstance(ssh, SshTarget):
        raise TargetsError(f"{lab.targets_file}: target {TARGET_NAME!r} is not an ssh target")
    specs = [
        dataclasses.replace(spec, profile=config.profile or spec.profile,
                            sudo=config.sudo or spec.sudo)
        for spec in ssh_host_specs(ssh, name)
    ]
    return Resolved(specs, context=lab, undo=undo,
                    undo_what=f"take down lab {lab.name}, started for target {name}")
