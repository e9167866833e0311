"""Ansible's YAML inventory format (also its ``group_vars``/``host_vars`` files).

::

    all:
      vars: {ansible_user: deploy}
      children:
        web:
          hosts:
            web[01:03]:
            db.example.com: {ansible_host: 10.0.0.5, ansible_port: 2222}

``!vault`` values are kept as ``Vaulted`` (the plain parser cannot decrypt them: using one
for a connection setting is an error naming it), ``!unsafe`` ones as ``Unsafe`` text (never a
template).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import TargetsError
from ..yamlfile import UniqueKeyLoader, load_yaml
from .model import Inventory

GROUP_KEYS = ("hosts", "vars", "children")


class Vaulted(str):
    """A value encrypted with ansible-vault (its ciphertext)."""


class Unsafe(str):
    """A value marked ``!unsafe``: literal text, never a template."""


class _InventoryLoader(UniqueKeyLoader):
    pass


def _scalar(kind: type[str]) -> Any:
    def construct(loader: yaml.BaseLoader, node: yaml.Node) -> str:
        assert isinstance(node, yaml.ScalarNode)
        return kind(loader.construct_scalar(node))

    return construct


_InventoryLoader.add_constructor("!vault", _scalar(Vaulted))
_InventoryLoader.add_constructor("!unsafe", _scalar(Unsafe))


def load_inventory_yaml(text: str, source: str) -> Any:
    """YAML text as Ansible's YAML files hold it (``!vault``, ``!unsafe`` tags)."""
    return load_yaml(text, source, loader=_InventoryLoader)


def parse_yaml(text: str, inventory: Inventory) -> None:
    """Add the groups and hosts of a YAML inventory to ``inventory``."""
    source = inventory.source
    data = load_inventory_yaml(text, source)
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise TargetsError(f"{source}: the top level must map group names to groups, got "
                           f"{type(data).__name__}")
    for name, body in data.items():
        _group(inventory, str(name), body, f"{source}: group {str(name)!r}")


def _group(inventory: Inventory, name: str, body: Any, where: str) -> None:
    inventory.group(name)
    if body is None:
        return
    if not isinstance(body, Mapping):
        raise TargetsError(f"{where}: expected a mapping of {', '.join(GROUP_KEYS)}, got "
                           f"{type(body).__name__}")
    for key in body:
        if key not in GROUP_KEYS:
            raise TargetsError(f"{where}: unknown key {key!r} (expected "
                               f"{', '.join(GROUP_KEYS)})")
    variables = body.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise TargetsError(f"{where}: field 'vars': expected a mapping, got "
                           f"{type(variables).__name__}")
    inventory.group(name).vars.update({str(k): v for k, v in variables.items()})
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, Mapping):
        raise TargetsError(f"{where}: field 'hosts': expected a mapping of host names, got "
                           f"{type(hosts).__name__}")
    for pattern, host_vars in hosts.items():
        host_where = f"{where}: host {str(pattern)!r}"
        if host_vars is not None and not isinstance(host_vars, Mapping):
            raise TargetsError(f"{host_where}: expected a mapping of variables, got "
                               f"{type(host_vars).__name__}")
        inventory.add_hosts(name, str(pattern), {str(k): v for k, v in (host_vars or {}).items()},
                            where)
    children = body.get("children") or {}
    if not isinstance(children, Mapping):
        raise TargetsError(f"{where}: field 'children': expected a mapping of group names, got "
                           f"{type(children).__name__}")
    for child, child_body in children.items():
        inventory.add_child(name, str(child), where)
        _group(inventory, str(child), child_body, f"{inventory.source}: group {str(child)!r}")
