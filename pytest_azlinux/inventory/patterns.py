"""Ansible host patterns: which hosts of an inventory a target takes.

``web``, ``web:db`` (or ``web,db``), ``web:&prod`` (and in prod), ``web:!canary`` (but not
in canary), globs (``web*``, matched against group and host names), ``~regex``, ``all``/``*``.
Union terms come first, then intersections, then exclusions, as in Ansible. A term that
matches nothing is an error (Ansible only warns; here it is most often a typo).
"""

from __future__ import annotations

import fnmatch
import re

from ..errors import TargetsError
from .model import Inventory

_GLOB = re.compile(r"[*?\[]")
_SUBSCRIPT = re.compile(r"\[(?:-?[0-9]+|[0-9]+[:-][0-9]*)\]$")  # Ansible's group[0], group[1:3]


def select_group(inventory: Inventory, group: str, where: str) -> list[str]:
    """The hosts of ``group`` (and of its children)."""
    if group not in inventory.groups:
        known = ", ".join(sorted(inventory.groups))
        raise TargetsError(f"{where}: field 'group': unknown group {group!r} (groups: {known})")
    hosts = inventory.hosts_of(group)
    if not hosts:
        raise TargetsError(f"{where}: field 'group': group {group!r} has no hosts")
    return hosts


def select_pattern(inventory: Inventory, pattern: str, where: str) -> list[str]:
    """The hosts an Ansible host pattern selects, in inventory order."""
    terms = [t.strip() for part in pattern.split(",") for t in _split_colons(part, where)]
    terms = [t for t in terms if t]
    if not terms:
        raise TargetsError(f"{where}: field 'pattern': empty pattern")
    union = [t for t in terms if t[0] not in "&!"]
    selected: list[str] = []
    for term in union or ["all"]:
        selected.extend(h for h in _match(inventory, term, where) if h not in selected)
    for term in (t for t in terms if t[0] == "&"):
        keep = set(_match(inventory, term[1:], where))
        selected = [h for h in selected if h in keep]
    for term in (t for t in terms if t[0] == "!"):
        drop = set(_match(inventory, term[1:], where))
        selected = [h for h in selected if h not in drop]
    if not selected:
        raise TargetsError(f"{where}: field 'pattern': {pattern!r} selects no host")
    return selected


def _split_colons(part: str, where: str) -> list[str]:
    """``a:&b:!c`` -> terms; a colon inside brackets (``web[1:3]``) does not split."""
    terms = re.split(r":(?![^\[]*\])", part)
    for term in terms:
        if not term.lstrip("&!").startswith("~") and _SUBSCRIPT.search(term):
            raise TargetsError(f"{where}: field 'pattern': {term!r}: subscripts ([0], [1:3]) "
                               "are not supported; name the hosts or a group")
    return terms


def _match(inventory: Inventory, term: str, where: str) -> list[str]:
    if term in ("all", "*"):
        return inventory.hosts_of("all")
    if term in inventory.groups:
        return inventory.hosts_of(term)
    if term in inventory.host_vars:
        return [term]
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise TargetsError(f"{where}: field 'pattern': {term!r}: bad regex: {exc}") from None
        matches = regex.match
    elif _GLOB.search(term):
        matches = re.compile(fnmatch.translate(term)).match
    else:
        matches = None
    out: list[str] = []
    if matches is not None:
        for group in inventory.groups:
            if matches(group):
                out.extend(h for h in inventory.hosts_of(group) if h not in out)
        out.extend(h for h in inventory.host_vars if matches(h) and h not in out)
    if not out:
        raise TargetsError(f"{where}: field 'pattern': {term!r} matches no group or host "
                           f"(groups: {', '.join(sorted(inventory.groups))})")
    return out
