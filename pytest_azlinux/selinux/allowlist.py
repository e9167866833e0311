"""Known, accepted denials: the target's ``suites.selinux.allowlist``.

Each entry names what it matches (every given field must match; shell-style globs such as
``container_*``) and carries the acceptance fields every allowlist and waiver shares
(pytest_azlinux.acceptance): ``reason`` (required), ``expires``, ``tracker``, ``owner``::

    suites:
      selinux:
        allowlist:
          - stype: httpd_t
            ttype: shadow_t
            tclass: file
            perms: [read, open]      # a group matches when all its perms are listed here
            comm: httpd
            reason: "legacy auth module, removed in 2026.01"
            expires: 2026-02-01
            tracker: https://tracker.example/OPS-123

An expired entry does not apply: the groups it covered count as unexplained again, and the
message says which entry expired. ``apply_allowlist`` also reports, per entry, how many
groups and records it absorbed, and which of its fields a group could not be checked against
because the record source did not supply them (see ``DenialGroup.missing``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..acceptance import Acceptance
from ..analyse.avc_groups import DenialGroup

MATCH_FIELDS = ("stype", "ttype", "tclass", "perms", "comm", "exe", "kind")


class AllowEntry(Acceptance):
    """One allowlist entry: match fields (all optional, globs) and why it is accepted."""

    stype: str | None = None
    ttype: str | None = None
    tclass: str | None = None
    perms: list[str] | None = None
    comm: str | None = None
    exe: str | None = None
    kind: str | None = None  # "denial" or "error" (SELINUX_ERR)

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

    def unknowable(self, group: DenialGroup) -> list[str]:
        """The fields of this entry that ``group`` cannot be checked against (its records
        carry no such value), when every other field matches: the entry might have applied."""
        missing: list[str] = [f for f in ("exe", "comm")
                   if getattr(self, f) is not None and f in group.missing]
        if not missing:
            return []
        others = self.model_copy(update=dict.fromkeys(missing))
        return missing if others.matches(group) else []

    def describe(self) -> str:
        fields = self.model_dump(include=set(MATCH_FIELDS), exclude_none=True)
        text = " ".join(f"{k}={v}" for k, v in fields.items()) or "(everything)"
        return text.replace("'", "")


@dataclass
class EntryUse:
    """What one allowlist entry absorbed in one check."""

    index: int
    entry: AllowEntry
    groups: int = 0
    records: int = 0

    def line(self) -> str:
        return (f"allowlist[{self.index}] {self.entry.describe()}: {self.records} record(s) in "
                f"{self.groups} group(s), {self.entry.acceptance_text()}")

    def as_json(self) -> dict[str, object]:
        return {"entry": self.index, "match": self.entry.describe(), "groups": self.groups,
                "records": self.records, **self.entry.acceptance_fields()}


@dataclass
class Verdict:
    """Groups split into explained (with the entry that explains each) and unexplained."""

    explained: list[tuple[DenialGroup, AllowEntry]]
    unexplained: list[DenialGroup]
    used: list[EntryUse] = field(default_factory=list)  # entries that absorbed something
    expired: list[EntryUse] = field(default_factory=list)  # expired entries that would have
    # (index, fields, groups): an entry that could not be checked because a source lacks fields
    unknowable: list[tuple[int, list[str], int]] = field(default_factory=list)

    def used_json(self) -> str:
        """The entries used, for the ``azl.allowlist.used`` test property."""
        return json.dumps([u.as_json() for u in self.used], sort_keys=True)

    def lines(self) -> list[str]:
        """What the allowlist did, for messages: used entries, expired ones, blind spots."""
        out = [f"allowlisted: {u.line()}" for u in self.used]
        out += [f"EXPIRED, not applied: {u.line()}" for u in self.expired]
        out += [
            f"allowlist[{i}] could not be checked against {n} group(s): the records carry no "
            f"{' or '.join(fields)} (the source does not supply it)"
            for i, fields, n in self.unknowable
        ]
        return out


def apply_allowlist(
    groups: Sequence[DenialGroup], entries: Sequence[AllowEntry], today: dt.date
) -> Verdict:
    """Explain groups by the first active entry that matches; expired entries never apply."""
    explained: list[tuple[DenialGroup, AllowEntry]] = []
    unexplained: list[DenialGroup] = []
    used: dict[int, EntryUse] = {}
    expired: dict[int, EntryUse] = {}
    blind: dict[int, tuple[list[str], int]] = {}
    for group in groups:
        hit = next((i for i, e in enumerate(entries) if e.active(today) and e.matches(group)),
                   None)
        if hit is not None:
            explained.append((group, entries[hit]))
            use = used.setdefault(hit, EntryUse(hit, entries[hit]))
            use.groups += 1
            use.records += group.count
            continue
        unexplained.append(group)
        for i, entry in enumerate(entries):
            if entry.matches(group):  # only an expired entry matches
                gone = expired.setdefault(i, EntryUse(i, entry))
                gone.groups += 1
                gone.records += group.count
            elif fields := entry.unknowable(group):
                old = blind.get(i, (fields, 0))
                blind[i] = (sorted(set(old[0]) | set(fields)), old[1] + 1)
    return Verdict(
        explained, unexplained,
        used=[used[i] for i in sorted(used)],
        expired=[expired[i] for i in sorted(expired)],
        unknowable=[(i, f, n) for i, (f, n) in sorted(blind.items())],
    )
