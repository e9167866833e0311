"""The sections one gathering printed for a host, and the parsed view of each.

A fixed section is parsed by its ``SectionRead`` (declared with the check kinds that read
it): ``Evidence.get`` gives None where the section is missing or its command could not run;
checks turn that into "cannot read" (an ERROR), never into a finding. The keyed reads
(sysctl values, ``stat`` of paths) are parsed here, where the plan merges them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar, cast

from ..facts import ImageFacts
from ..packages.inventory import Inventory
from ..reads import split_sections
from .readplan import ReadPlan, SectionRead

T = TypeVar("T")


@dataclass(frozen=True)
class FileStat:
    path: str
    mode: int
    owner: str
    group: str
    kind: str  # "regular file", "directory", ...


def parse_stats(text: str) -> dict[str, FileStat]:
    """``stat -c STAT_FORMAT`` lines: path -> FileStat."""
    out: dict[str, FileStat] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 5 or not re.fullmatch(r"[0-7]+", parts[1]):
            continue
        out[parts[0]] = FileStat(parts[0], int(parts[1], 8), parts[2], parts[3], parts[4])
    return out


def to_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class Evidence:
    """The sections one gather printed for one host, with their parsed views."""

    def __init__(
        self,
        host: str,
        sections: Mapping[str, str],
        facts: ImageFacts | None = None,
        inventory: Inventory | None = None,
        inventory_problem: str = "",
    ) -> None:
        self.host = host
        self.sections = dict(sections)
        self.facts = facts  # the host's image facts: the kernel command line comes from there
        # the installed packages (None: not read, or unreadable: ``inventory_problem`` says why)
        self.inventory = inventory
        self.inventory_problem = inventory_problem
        self._parsed: dict[str, Any] = {}

    @classmethod
    def parse(
        cls,
        host: str,
        text: str,
        plan: ReadPlan,
        facts: ImageFacts | None = None,
        inventory: Inventory | None = None,
        inventory_problem: str = "",
    ) -> Evidence:
        sections = split_sections(text, plan.section_names())
        return cls(
            host, {name: s.text for name, s in sections.items()}, facts, inventory,
            inventory_problem,
        )

    def has(self, name: str) -> bool:
        return name in self.sections

    def text(self, name: str) -> str | None:
        return self.sections.get(name)

    def rc(self, name: str) -> int | None:
        value = self.sections.get(f"rc:{name}")
        return to_int(value.strip()) if value is not None else None

    def get(self, read: SectionRead[T]) -> T | None:
        """The parsed section, or None where it was not read or its command failed."""
        if read.name not in self._parsed:
            text = self.sections.get(read.name)
            ok = text is not None and (read.rc_ok is None or self.rc(read.name) in read.rc_ok)
            self._parsed[read.name] = read.parse(text) if text is not None and ok else None
        return cast("T | None", self._parsed[read.name])

    # -- keyed reads ------------------------------------------------------------------------
    @cached_property
    def sysctl(self) -> dict[str, str]:
        """Readable sysctls: key -> value (absent keys are missing from the mapping)."""
        out: dict[str, str] = {}
        for line in (self.sections.get("sysctl") or "").splitlines():
            path, sep, value = line.partition(":")
            if sep and path.startswith("/proc/sys/"):
                out[path.removeprefix("/proc/sys/").replace("/", ".")] = value.strip()
        return out

    @cached_property
    def stats(self) -> dict[str, FileStat]:
        return parse_stats(self.sections.get("stat", ""))
