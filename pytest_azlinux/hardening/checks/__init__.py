"""The check kinds a control can use: what each reads, what passes, and the pure judgement.

Every kind is a small model (the ``check:`` mapping of a control, selected by ``kind``) with
``plan`` (add what it reads to a ``ReadPlan``), ``reads``/``expects`` (one line each for
people: docs and messages) and ``judge`` (a ``Verdict`` from an ``Evidence``, no I/O).
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from .accounts import AccountsCheck, LoginDefsCheck, SudoersCheck
from .files import FileCheck, MountCheck, WorldWritableCheck
from .kernel import CmdlineCheck, LsmCheck, ModuleCheck, OpensslFipsCheck, SysctlCheck
from .services import AuditCheck, GpgCheck, ServiceCheck, TimeSourceCheck
from .sshd import SshdCheck, SshdConfigFileCheck, SshdHostKeysCheck

Check = Annotated[
    SshdCheck | SshdConfigFileCheck | SshdHostKeysCheck | SysctlCheck | ModuleCheck
    | CmdlineCheck | LsmCheck | OpensslFipsCheck | FileCheck | MountCheck | WorldWritableCheck
    | AccountsCheck | LoginDefsCheck | SudoersCheck | ServiceCheck | TimeSourceCheck | AuditCheck
    | GpgCheck,
    Field(discriminator="kind"),
]

CHECK_TYPES = (
    SshdCheck, SshdConfigFileCheck, SshdHostKeysCheck, SysctlCheck, ModuleCheck, CmdlineCheck,
    LsmCheck, OpensslFipsCheck, FileCheck, MountCheck, WorldWritableCheck, AccountsCheck,
    LoginDefsCheck, SudoersCheck, ServiceCheck, TimeSourceCheck, AuditCheck, GpgCheck,
)  # fmt: skip
# The ``kind:`` names, for messages.
KINDS = frozenset(get_args(t.model_fields["kind"].annotation)[0] for t in CHECK_TYPES)
