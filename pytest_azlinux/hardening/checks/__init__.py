"""The check kinds a control can use: ONE table (``KINDS``), everything else derived from it.

A kind is a small model (the ``check:`` mapping of a control, selected by its ``kind``
literal) with ``plan`` (add the ``SectionRead``s and keyed reads it needs to a ``ReadPlan``;
each ``SectionRead`` carries its shell and its parser, declared next to the kinds that read
it), ``reads``/``expects`` (one line each for people: docs and messages) and ``judge`` (a
``Verdict`` from an ``Evidence``, no I/O). Adding a kind: write that model in a module here
and add it to ``KINDS``; the controls' schema, the kind names and the read follow.
"""

from __future__ import annotations

from typing import Any, get_args

from ..base import CheckKind
from .accounts import AccountsCheck, LoginDefsCheck, SudoersCheck
from .files import FileCheck, MountCheck, WorldWritableCheck
from .kernel import CmdlineCheck, LsmCheck, ModuleCheck, OpensslFipsCheck, SysctlCheck
from .services import AuditCheck, GpgCheck, ServiceCheck, TimeSourceCheck
from .sshd import SshdCheck, SshdConfigFileCheck, SshdHostKeysCheck

KINDS: tuple[type[CheckKind], ...] = (
    SshdCheck, SshdConfigFileCheck, SshdHostKeysCheck, SysctlCheck, ModuleCheck, CmdlineCheck,
    LsmCheck, OpensslFipsCheck, FileCheck, MountCheck, WorldWritableCheck, AccountsCheck,
    LoginDefsCheck, SudoersCheck, ServiceCheck, TimeSourceCheck, AuditCheck, GpgCheck,
)  # fmt: skip


def kind_name(kind: type[Any]) -> str:
    """The ``kind:`` a check model answers to (its ``kind`` field's one literal)."""
    field = getattr(kind, "model_fields", {}).get("kind")
    names = get_args(field.annotation) if field is not None else ()
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"hardening check kind {kind.__name__}: needs kind: Literal['<name>']")
    return names[0]


def kind_names(kinds: tuple[type[CheckKind], ...]) -> frozenset[str]:
    """The kinds' names; a table with a malformed or repeated entry is refused (TypeError)."""
    names = [kind_name(k) for k in kinds]
    for kind in kinds:
        missing = [m for m in ("plan", "reads", "expects", "judge") if not callable(
            getattr(kind, m, None))]
        if missing:
            raise TypeError(f"hardening check kind {kind.__name__}: no {missing[0]}()")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TypeError(f"hardening check kinds: {repeated[0]!r} registered twice")
    return frozenset(names)


NAMES = kind_names(KINDS)  # checked at import: a broken table stops the plugin from loading
