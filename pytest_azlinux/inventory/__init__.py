"""Ansible inventories read without Ansible: INI and YAML files, groups and children,
host ranges, variables (in the file and in ``group_vars/``/``host_vars/`` beside it), host
patterns.

A plain parser rather than ansible-core's inventory API: Ansible is not a dependency of the
plugin (it is large, and pins its own versions of Jinja2 and PyYAML), and the connection
settings a target needs are plain values in the file. What needs Ansible itself is refused
with a message naming it: Jinja2 templates and vault-encrypted values in a setting the
target uses, inventory scripts and plugins (a file that is neither INI nor YAML).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import TargetsError
from ..yamlfile import read_text
from .ini import parse_ini
from .model import Group, Inventory
from .patterns import select_group, select_pattern
from .yamlinv import Unsafe, Vaulted, load_inventory_yaml, parse_yaml

__all__ = [
    "Group", "Inventory", "Unsafe", "Vaulted", "load_inventory", "select_group",
    "select_pattern",
]

YAML_SUFFIXES = (".yml", ".yaml", ".json")  # as Ansible's yaml plugin decides
_VARS_SUFFIXES = ("", *YAML_SUFFIXES)


def load_inventory(path: Path, where: str) -> Inventory:
    """Read an inventory file (YAML by its suffix, else INI) and the ``group_vars/`` and
    ``host_vars/`` directories beside it; errors start with ``where``."""
    source = f"{where}: {path}"
    if path.is_dir():
        raise TargetsError(f"{source}: is a directory: name one inventory file")
    text = read_text(path, "inventory", source=source)
    if text.startswith("#!"):
        raise TargetsError(f"{source}: an inventory script: run it with Ansible "
                           "(ansible-inventory -i FILE --list -y > inventory.yml) and name the "
                           "output here")
    inventory = Inventory(source)
    if path.suffix.lower() in YAML_SUFFIXES:
        parse_yaml(text, inventory)
    else:
        parse_ini(text, inventory)
    inventory.finish()
    base = path.parent
    inventory.group_vars_files.update(_vars_dir(base / "group_vars", inventory.groups, where))
    inventory.host_vars_files.update(_vars_dir(base / "host_vars", inventory.host_vars, where))
    return inventory


def _vars_dir(directory: Path, names: Iterable[str], where: str) -> dict[str, dict[str, Any]]:
    """Variables of each of ``names`` from ``directory``, as Ansible finds them: ``NAME``,
    ``NAME.yml`` (``.yaml``, ``.json``), or every file under a directory ``NAME/``.
    Vault-encrypted files are left out: they cannot be read without the vault password."""
    out: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return out
    for name in names:
        files: list[Path] = []
        for suffix in _VARS_SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                files.append(candidate)
            elif suffix == "" and candidate.is_dir():
                files.extend(sorted(
                    p for p in candidate.rglob("*")
                    if p.is_file() and not p.name.startswith(".") and not p.name.endswith("~")
                    and p.suffix.lower() in _VARS_SUFFIXES
                ))
        for file in files:
            out.setdefault(name, {}).update(_vars_file(file, where))
    return out


def _vars_file(path: Path, where: str) -> dict[str, Any]:
    source = f"{where}: {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetsError(f"{source}: cannot read variables: {exc}") from None
    if text.startswith("$ANSIBLE_VAULT;"):
        return {}
    data = load_inventory_yaml(text, source)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TargetsError(f"{source}: expected a mapping of variables, got "
                           f"{type(data).__name__}")
    return {str(k): v for k, v in data.items()}
