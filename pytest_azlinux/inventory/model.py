"""An Ansible inventory as Ansible builds it: groups, children, hosts and their variables.

Every host is in ``all``; a host in no other group is in ``ungrouped``; a group without a
parent is a child of ``all``. A host's variables are merged the way Ansible merges them:
the inventory file's group variables (``all`` first, then deeper groups; at one depth by
``ansible_group_priority``, then name), then ``group_vars/`` files in the same order, then the
host's own variables in the file, then ``host_vars/`` files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import TargetsError
from .hostnames import expand, split_port


@dataclass
class Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    """Groups and hosts of one inventory file; ``source`` names it in errors."""

    source: str
    groups: dict[str, Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)  # in file order
    group_vars_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_vars_files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.group("all")
        self.group("ungrouped")

    # -- building ------------------------------------------------------------------------
    def group(self, name: str) -> Group:
        if name not in self.groups:
            self.groups[name] = Group(name)
        return self.groups[name]

    def add_host(self, group: str, host: str, variables: Mapping[str, Any]) -> None:
        self.host_vars.setdefault(host, {}).update(variables)
        members = self.group(group).hosts
        if host not in members:
            members.append(host)

    def add_hosts(
        self, group: str, pattern: str, variables: Mapping[str, Any], where: str
    ) -> None:
        """The hosts a pattern stands for (``web[01:03]:2222``) into ``group``; a port in the
        pattern is the hosts' ``ansible_port`` unless the variables set one."""
        name, port = split_port(pattern, where)
        if port is not None:
            variables = {"ansible_port": port, **variables}
        for host in expand(name, where):
            self.add_host(group, host, variables)

    def add_child(self, parent: str, child: str, where: str) -> None:
        if child == parent or parent in self._descendants(child):
            raise TargetsError(f"{where}: group {child!r} as a child of {parent!r} makes a loop")
        if child == "all":
            raise TargetsError(f"{where}: group 'all' cannot be a child of {parent!r}")
        if child not in self.group(parent).children:
            self.groups[parent].children.append(child)
        if parent not in self.group(child).parents:
            self.groups[child].parents.append(parent)

    def finish(self) -> None:
        """Ansible's implicit structure: top-level groups under ``all``, hosts in ``all``, hosts
        in no group under ``ungrouped``."""
        for name, group in self.groups.items():
            if name != "all" and not group.parents:
                self.add_child("all", name, self.source)
        grouped = {h for g in self.groups.values() if g.name not in ("all", "ungrouped")
                   for h in g.hosts}
        for host in self.host_vars:
            if host not in grouped and host not in self.groups["ungrouped"].hosts:
                self.groups["ungrouped"].hosts.append(host)

    # -- reading ---------------------------------------------------------------------------
    def hosts_of(self, group: str) -> list[str]:
        """Hosts of ``group`` and of its children, in file order."""
        if group == "all":
            return list(self.host_vars)
        members = {group, *self._descendants(group)}
        inside = {h for g in members for h in self.groups[g].hosts}
        return [h for h in self.host_vars if h in inside]

    def groups_of(self, host: str) -> list[str]:
        """Every group ``host`` is in, directly or through children (``all`` included)."""
        direct = [g.name for g in self.groups.values() if host in g.hosts]
        out: list[str] = []
        todo = [*direct, "all"]
        while todo:
            name = todo.pop()
            if name not in out:
                out.append(name)
                todo.extend(self.groups[name].parents)
        return out

    def variables(self, host: str) -> dict[str, Any]:
        """The host's variables, merged in Ansible's order (see the module docstring)."""
        ordered = sorted(self.groups_of(host), key=self._rank)
        merged: dict[str, Any] = {}
        for name in ordered:
            merged.update(self.groups[name].vars)
        for name in ordered:
            merged.update(self.group_vars_files.get(name, {}))
        merged.update(self.host_vars.get(host, {}))
        merged.update(self.host_vars_files.get(host, {}))
        return merged

    def _rank(self, group: str) -> tuple[int, int, str]:
        priority = self.groups[group].vars.get("ansible_group_priority", 1)
        return self._depth(group), priority if isinstance(priority, int) else 1, group

    def _depth(self, group: str) -> int:
        parents = self.groups[group].parents
        return 1 + max(self._depth(p) for p in parents) if parents else 0

    def _descendants(self, group: str) -> set[str]:
        out: set[str] = set()
        todo = list(self.groups[group].children) if group in self.groups else []
        while todo:
            name = todo.pop()
            if name not in out:
                out.add(name)
                todo.extend(self.groups[name].children)
        return out
