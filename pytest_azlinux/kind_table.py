"""The target kind table: one entry per kind (its name, model and resolver).

It sits below ``targets.py`` (which validates a target with the entry's model) and names
each resolver by import path, so neither the targets file nor the table imports the kinds'
code: ``kinds/`` re-exports it for plugins, and resolvers are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError
from .target_config import (
    AnsibleTarget,
    ClusterTarget,
    ImageTarget,
    LabTarget,
    LocalTarget,
    RecordedTarget,
    SshConfigTarget,
    SshTarget,
    TargetConfig,
)

if TYPE_CHECKING:
    from .kinds.protocol import Resolver

__all__ = ["BUILTIN", "BUILTIN_KINDS", "TargetKind", "kind_table"]


@dataclass(frozen=True)
class TargetKind:
    """A target kind: ``name`` (the ``kind:`` value), the ``model`` its targets validate as
    (a ``TargetConfig`` whose ``kind`` is ``Literal[name]``), and its ``resolver``
    (``"module:function"``, see ``kinds/protocol.py``). ``variants``: (key, model) pairs,
    a target with that key validates as that model instead."""

    name: str
    model: type[TargetConfig]
    resolver: str
    variants: tuple[tuple[str, type[TargetConfig]], ...] = ()

    def resolve_function(self) -> Resolver:
        """The resolver, imported now (the plugin does so for the selected targets' kinds
        at start-up: a resolver that does not import stops the run there, one line)."""
        module_name, _, attr = self.resolver.partition(":")
        try:
            found: Resolver = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"target kind {self.name!r}: cannot import resolver {self.resolver}: {exc}"
            ) from None
        return found


BUILTIN: tuple[TargetKind, ...] = (
    TargetKind("local", LocalTarget, "pytest_azlinux.kinds.local:resolve"),
    TargetKind("ssh", SshTarget, "pytest_azlinux.kinds.ssh:resolve",
               variants=(("ssh_config", SshConfigTarget),)),
    TargetKind("ansible", AnsibleTarget, "pytest_azlinux.kinds.ansible:resolve"),
    TargetKind("lab", LabTarget, "pytest_azlinux.lab.target:resolve_lab_target"),
    TargetKind("cluster", ClusterTarget, "pytest_azlinux.cluster.target:resolve_cluster_target"),
    TargetKind("image", ImageTarget, "pytest_azlinux.kinds.image:resolve"),
    TargetKind("recorded", RecordedTarget, "pytest_azlinux.kinds.recorded:resolve"),
)


def kind_table(entries: Iterable[TargetKind]) -> dict[str, TargetKind]:
    """Entries by name; a name registered twice is an error."""
    table: dict[str, TargetKind] = {}
    for entry in entries:
        if entry.name in table and table[entry.name] != entry:
            raise ConfigError(f"target kind {entry.name!r} is registered twice")
        table[entry.name] = entry
    return table


BUILTIN_KINDS: Mapping[str, TargetKind] = {k.name: k for k in BUILTIN}
