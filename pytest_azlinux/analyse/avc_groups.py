"""SELinux denials and errors grouped as a reader wants them: one line per (kind, source
type, target type, class, permissions, command), with counts, times, the enforcing mode the
records report and an audit2allow-style hint. Pure functions over parsed records
(``analyse.avc``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .avc import AvcRecord

GroupKey = tuple[str, str, str, str, tuple[str, ...], str, str]
_MODE_WORD = {False: "blocked", True: "permissive", None: "mode unknown"}


@dataclass
class DenialGroup:
    """Records that share (kind, source type, target type, class, perms, comm), and for
    SELinux errors what went wrong (each invalid context is a group of its own)."""

    kind: Literal["denial", "error"]
    stype: str
    ttype: str
    tclass: str
    perms: tuple[str, ...]
    comm: str
    error: str | None = None
    count: int = 0
    first: float | None = None
    last: float | None = None
    permissive: set[bool | None] = field(default_factory=set)
    # records per permissive= value (False: enforced, True: only logged, None: not said)
    modes: dict[bool | None, int] = field(default_factory=dict)
    exes: set[str] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    rtypes: set[str] = field(default_factory=set)

    def add(self, r: AvcRecord) -> None:
        self.count += 1
        self.rtypes.add(r.rtype)
        self.permissive.add(r.permissive)
        self.modes[r.permissive] = self.modes.get(r.permissive, 0) + 1
        if r.exe:
            self.exes.add(r.exe)
        where = r.path or r.name
        if where and where not in self.paths and len(self.paths) < 3:
            self.paths.append(where)
        if r.timestamp is not None:
            self.first = r.timestamp if self.first is None else min(self.first, r.timestamp)
            self.last = r.timestamp if self.last is None else max(self.last, r.timestamp)

    @property
    def missing(self) -> frozenset[str]:
        """Process fields none of the records supplied (their source had no SYSCALL record)."""
        out = set()
        if not self.exes:
            out.add("exe")
        if not self.comm or self.comm == "?":
            out.add("comm")
        return frozenset(out)

    @property
    def hint(self) -> str:
        """An audit2allow-style rule that would allow it (or the error, for SELINUX_ERR)."""
        if self.kind == "error":
            return f"# SELINUX_ERR {self.error or ''} ({self.stype} -> {self.ttype}:{self.tclass})"
        target = "self" if self.ttype == self.stype else self.ttype
        return f"allow {self.stype} {target}:{self.tclass} {{ {' '.join(self.perms)} }};"

    @property
    def blocked(self) -> bool | None:
        """True when some record was enforced (permissive=0), None when nobody said."""
        if False in self.permissive:
            return True
        if True in self.permissive and None not in self.permissive:
            return False
        return None

    @property
    def mode(self) -> str:
        """``blocked``, ``permissive``, ``mode unknown``, or for a group whose records
        disagree ``mixed: 2 blocked, 1 permissive`` (e.g. a domain made permissive, or the
        host switched modes inside the window)."""
        if len(self.modes) == 1:
            return _MODE_WORD[next(iter(self.modes))]
        parts = [f"{self.modes[k]} {_MODE_WORD[k]}" for k in (False, True, None) if k in self.modes]
        return "mixed: " + ", ".join(parts)

    def summary(self) -> str:
        extra = f" exe={','.join(sorted(self.exes))}" if self.exes else ""
        where = f" e.g. {', '.join(self.paths)}" if self.paths else ""
        perms = " ".join(self.perms) or "-"
        error = f" {self.error}" if self.kind == "error" and self.error else ""
        return (
            f"{self.count:>5} x {self.kind} comm={self.comm or '?'}{extra} "
            f"{self.stype} -> {self.ttype}:{self.tclass} {{ {perms} }}{error} [{self.mode}]"
            f"{where}\n        {self.hint}"
        )


def group_key(r: AvcRecord) -> GroupKey:
    kind = "error" if r.is_error else "denial"
    # user-space managers (dbus, systemd) log no comm: their exe names the command
    comm = r.comm or (r.exe.rsplit("/", 1)[-1] if r.exe else "")
    error = (r.error or "") if r.is_error else ""
    return (kind, r.stype or "?", r.ttype or "?", r.tclass or "?", tuple(sorted(r.perms)), comm,
            error)


def group_denials(records: Iterable[AvcRecord]) -> list[DenialGroup]:
    """Denials and SELinux errors grouped, most frequent first (granted/notices dropped)."""
    groups: dict[GroupKey, DenialGroup] = {}
    for r in records:
        if not (r.is_denial or r.is_error):
            continue
        key = group_key(r)
        g = groups.get(key)
        if g is None:
            kind, stype, ttype, tclass, perms, comm, error = key
            g = groups[key] = DenialGroup(kind, stype, ttype, tclass, perms, comm,  # type: ignore[arg-type]
                                          error or None)
        g.add(r)
    return sorted(groups.values(), key=lambda g: (-g.count, g.stype, g.ttype, g.tclass, g.perms))


def count_types(records: Sequence[AvcRecord]) -> dict[str, int]:
    """Records per type, plus ``<TYPE>:denied`` counts."""
    out: dict[str, int] = {}
    for r in records:
        out[r.rtype] = out.get(r.rtype, 0) + 1
        if r.is_denial:
            out[f"{r.rtype}:denied"] = out.get(f"{r.rtype}:denied", 0) + 1
    return out


def format_groups(groups: Sequence[DenialGroup], limit: int = 10) -> str:
    lines = [g.summary() for g in groups[:limit]]
    if len(groups) > limit:
        rest = sum(g.count for g in groups[limit:])
        lines.append(f"  ... and {len(groups) - limit} more groups ({rest} records)")
    return "\n".join(lines)
