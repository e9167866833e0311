"""Ansible's INI inventory format.

::

    mail.example.com                      # before any section: ungrouped
    [web]
    web[01:03].example.com ansible_user=deploy
    db.example.com:2222 ansible_host=10.0.0.5
    [web:vars]
    ansible_ssh_common_args='-o ProxyJump=ops@bastion:22'
    [prod:children]
    web

Values are read as Ansible reads them: a Python literal where one parses (``'quoted'``,
``2222``, ``True``), else the text as written.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from ..errors import TargetsError
from .model import Inventory

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?")


def parse_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal if it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_ini(text: str, inventory: Inventory) -> None:
    """Add the groups and hosts of ``text`` to ``inventory``; an unparsable line is an error
    naming the file and the line."""
    source = inventory.source
    group, state = "ungrouped", "hosts"
    declared: set[str] = set()
    vars_sections: dict[str, int] = {}  # group -> line of its first :vars section
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}: line {number}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = _SECTION.fullmatch(line)
            if not m:
                raise TargetsError(f"{where}: unparsable section header: {line!r}")
            group, state = m[1], m[2] or "hosts"
            if state not in ("hosts", "vars", "children"):
                raise TargetsError(f"{where}: section [{group}:{state}] has an unknown type "
                                   "(expected hosts, vars or children)")
            if state == "vars":
                vars_sections.setdefault(group, number)
            else:
                declared.add(group)
                inventory.group(group)
            continue
        if state == "hosts":
            _host_line(line, group, inventory, where)
        elif state == "children":
            names = _split(line, where)
            if len(names) != 1:
                raise TargetsError(f"{where}: expected one group name, got {line!r}")
            declared.add(names[0])
            inventory.add_child(group, names[0], where)
        else:
            key, eq, value = line.partition("=")
            if not eq or not key.strip():
                raise TargetsError(f"{where}: expected key=value, got {line!r}")
            inventory.group(group).vars[key.strip()] = parse_value(value.strip())
    for name, number in vars_sections.items():
        if name not in declared and name != "all":
            raise TargetsError(f"{source}: line {number}: [{name}:vars] for a group that is "
                               "defined nowhere in the file")


def _split(line: str, where: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise TargetsError(f"{where}: unparsable line ({exc}): {line!r}") from None


def _host_line(line: str, group: str, inventory: Inventory, where: str) -> None:
    tokens = _split(line, where)
    if not tokens:
        return
    variables: dict[str, Any] = {}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or not key:
            raise TargetsError(f"{where}: expected key=value after the host name, got "
                               f"{token!r}")
        variables[key] = parse_value(value)
    inventory.add_hosts(group, tokens[0], variables, where)
