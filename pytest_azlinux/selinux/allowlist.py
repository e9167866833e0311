"""Known, explained denials: the target's ``suites.selinux.allowlist``.

Each entry names what it matches (every given field must match; shell-style globs such as
``container_*``) and why it is acceptable::

    suites:
      selinux:
        allowlist:
          - stype: httpd_t
            ttype: shadow_t
            tclass: file
            perms: [read, open]      # a group matches when all its perms are listed here
            comm: httpd
            reason: "ticket OPS-123: legacy auth module, removed in 2026.01"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..analyse.avc import DenialGroup
from ..errors import TargetsError


class AllowEntry(BaseModel):
    """One allowlist entry: match fields (all optional, globs) and a required reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stype: str | None = None
    ttype: str | None = None
    tclass: str | None = None
    perms: list[str] | None = None
    comm: str | None = None
    exe: str | None = None
    kind: str | None = None  # "denial" or "error" (SELINUX_ERR)
    reason: str = Field(min_length=1)

    def matches(self, group: DenialGroup) -> bool:
        pairs = ((self.stype, group.stype), (self.ttype, group.ttype),
                 (self.tclass, group.tclass), (self.comm, group.comm), (self.kind, group.kind))
        if any(p is not None and not fnmatchcase(v, p) for p, v in pairs):
            return False
        if self.exe is not None and not any(fnmatchcase(e, self.exe) for e in group.exes):
            return False
        if self.perms is not None:
            allowed = self.perms
            if not all(any(fnmatchcase(p, a) for a in allowed) for p in group.perms):
                return False
        return True

    def describe(self) -> str:
        fields = self.model_dump(exclude_none=True, exclude={"reason"})
        return " ".join(f"{k}={v}" for k, v in fields.items()) or "(everything)"


def parse_allowlist(raw: Any, where: str) -> list[AllowEntry]:
    """Validate the allowlist; TargetsError names the entry and the field."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TargetsError(f"{where}: must be a list of entries, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise TargetsError(f"{where}[{i}]: must be a mapping with match fields and a reason")
        try:
            out.append(AllowEntry.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "(entry)"
            raise TargetsError(f"{where}[{i}]: field '{field}': {err['msg']}") from None
    return out


@dataclass(frozen=True)
class Verdict:
    """Groups split into explained (with the entry that explains each) and unexplained."""

    explained: list[tuple[DenialGroup, AllowEntry]]
    unexplained: list[DenialGroup]


def apply_allowlist(groups: Sequence[DenialGroup], entries: Sequence[AllowEntry]) -> Verdict:
    explained: list[tuple[DenialGroup, AllowEntry]] = []
    unexplained: list[DenialGroup] = []
    for group in groups:
        entry = next((e for e in entries if e.matches(group)), None)
        if entry is None:
            unexplained.append(group)
        else:
            explained.append((group, entry))
    return Verdict(explained, unexplained)
