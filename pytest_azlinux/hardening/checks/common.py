"""What the check kinds share: verdict helpers and the mode/ownership comparison."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Strict, Verdict
from ..evidence import FileStat

IfAbsent = Literal["fail", "skip"]


def unavailable(found: str, expected: str) -> Verdict:
    return Verdict("unavailable", found, expected)


def first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else "no output"


def shorten(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


# -- sshd ---------------------------------------------------------------------------------------


def mode_excess(st: FileStat, max_mode: int) -> int:
    return st.mode & ~max_mode


def describe_stat(st: FileStat) -> str:
    return f"{st.path} {st.mode:04o} {st.owner}:{st.group}"


class Ownership(Strict):
    max_mode: str = Field(pattern=r"^0?[0-7]{3,4}$")
    owner: list[str] = Field(default_factory=lambda: ["root"], min_length=1)
    group: list[str] = Field(default_factory=lambda: ["root"], min_length=1)

    def _expected(self, what: str) -> str:
        return (
            f"{what}: mode {int(self.max_mode, 8):04o} or stricter, owner "
            f"{'/'.join(self.owner)}, group {'/'.join(self.group)}"
        )

    def _offending(self, stats: list[FileStat]) -> list[str]:
        limit = int(self.max_mode, 8)
        return [
            describe_stat(st) for st in stats
            if mode_excess(st, limit) or st.owner not in self.owner or st.group not in self.group
        ]  # fmt: skip
