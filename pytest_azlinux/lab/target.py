"""Targets of kind ``lab``: the core asks for hosts; the lab is started when needed."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from ..errors import TargetsError
from ..targets import HostSpec, LabTarget, SshTarget, load_targets, ssh_host_specs
from .lab import Lab
from .targetsfile import TARGET_NAME

LAB_NAME_ENV = "AZL_LAB_NAME"  # which lab a ``kind: lab`` target means (default ``azl``)


def resolve_lab_target(
    name: str, config: LabTarget, start: bool
) -> tuple[list[HostSpec], Callable[[], None] | None]:
    """HostSpecs of the lab's ssh target, renamed to ``name``; with an undo when started.

    If the lab is not up: with ``start`` (the pytest controller) bring it up with the
    target's hosts/variants/disk_size and return an undo that takes it down (unless
    ``keep``); without (an xdist worker) that is an error. A lab that is already up is
    used as it is and left running.
    """
    lab = Lab(os.environ.get(LAB_NAME_ENV, "azl"))
    undo: Callable[[], None] | None = None
    if not lab.is_up():
        if not start:
            raise TargetsError(
                f"target {name!r}: lab {lab.name} is not up (start it with `azl lab up`)"
            )
        try:
            lab.up(config.hosts, config.variants, config.disk_size)
        except Exception:
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
    return specs, undo
