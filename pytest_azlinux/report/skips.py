"""Skipped tests grouped by their reason, so a count reads as a sentence.

``423 hardening controls: not applicable: suites.hardening.skip: namespaced lab hosts ...``
rather than 423 lines. Reasons that differ only in a host name or a number (``azl-1: no
btrfs`` and ``azl-2: no btrfs``; ``took 12 s`` and ``took 14 s``) are one reason: the parts
that vary are folded into ``<host>`` and ``<n>``, the parts every member shares are kept.
Largest group first. Pure: the verdict lines, the HTML page and the Markdown summary call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import CaseRecord

HOST_SLOT = "<host>"
NUMBER_SLOT = "<n>"
SHOWN_TESTS = 3  # test functions named in a group before "and N more"

# Word-like tokens (host names, versions, paths' parts); a token that is a host of the run
# is one slot, every run of digits in any other token is one.
_TOKEN = re.compile(r"\w+(?:[-.]\w+)*")  # never ends in "-": "azl-1->azl-2" is two
_DIGITS = re.compile(r"\d+")
_MARK = "\x00"  # a slot in a template (never in a reason: reasons are one-line text)


@dataclass(frozen=True, slots=True)
class Skip:
    """One skipped test: why, which test function, on which host."""

    reason: str
    test: str  # the test function, without its parametrization
    control: bool = False  # a hardening control's test
    host: str | None = None


@dataclass(frozen=True, slots=True)
class SkipGroup:
    """Skipped tests that share a reason (after folding hosts and numbers)."""

    reason: str  # the shared reason, varying parts shown as <host> / <n>
    count: int
    tests: tuple[str, ...]  # distinct test functions, most frequent first
    controls: int  # how many of them are hardening controls

    @property
    def what(self) -> str:
        """``423 hardening controls``, ``1 test (test_x)``, ``6 tests (test_a, test_b)``."""
        if self.controls == self.count:
            return f"{self.count} hardening control{'s' * (self.count != 1)}"
        names = ", ".join(self.tests[:SHOWN_TESTS])
        if len(self.tests) > SHOWN_TESTS:
            names += f" and {len(self.tests) - SHOWN_TESTS} more"
        return f"{self.count} test{'s' * (self.count != 1)} ({names})"

    def line(self, limit: int = 0) -> str:
        """``<what>: <reason>``; ``limit`` > 0 cuts the reason to that many characters."""
        reason = self.reason
        if 0 < limit < len(reason):
            reason = reason[: limit - 1] + "…"
        return f"{self.what}: {reason}"


def skip_of(case: CaseRecord) -> Skip:
    """A skipped case as a ``Skip`` (pytest's ``Skipped: `` prefix dropped)."""
    reason = " ".join(case.message.split()).removeprefix("Skipped: ") or "(no reason given)"
    return Skip(reason, case.name.split("[", 1)[0], case.control is not None, case.host)


def skips_of(cases: Iterable[CaseRecord]) -> list[Skip]:
    return [skip_of(c) for c in cases if c.outcome == "skipped"]


def group_skips(skips: Iterable[Skip]) -> list[SkipGroup]:
    """Group by reason, hosts and numbers folded; largest group first, then by reason."""
    skips = list(skips)
    hosts = frozenset(s.host for s in skips if s.host)
    members: dict[str, list[tuple[Skip, tuple[str, ...]]]] = {}
    for skip in skips:
        template, values = fold(skip.reason, hosts)
        members.setdefault(template, []).append((skip, values))
    groups = [_group(template, found) for template, found in members.items()]
    groups.sort(key=lambda g: (-g.count, g.reason))
    return groups


def fold(text: str, hosts: frozenset[str], numbers: bool = True
         ) -> tuple[str, tuple[str, ...]]:
    """``text`` with each slot marked (``\\x00h`` a host of ``hosts``, ``\\x00n`` a number,
    only with ``numbers``), and the slots' values in order; ``fill`` puts them back."""
    values: list[str] = []
    text = text.replace(_MARK, "")

    def digits(match: re.Match[str]) -> str:
        values.append(match.group())
        return _MARK + "n"

    def token(match: re.Match[str]) -> str:
        word = match.group()
        if word in hosts:
            values.append(word)
            return _MARK + "h"
        return _DIGITS.sub(digits, word) if numbers else word

    return _TOKEN.sub(token, text), tuple(values)


def fill(template: str, members: Iterable[tuple[str, ...]]) -> str:
    """A folded ``template`` as one text for all ``members`` (their slots' values): a slot
    every member fills alike keeps its value, others read ``<host>`` / ``<n>``."""
    members = list(members)
    pieces = template.split(_MARK)
    text = [pieces[0]]
    for index, piece in enumerate(pieces[1:]):
        seen = {values[index] for values in members}
        kind, rest = piece[0], piece[1:]
        if len(seen) == 1:
            text.append(next(iter(seen)))
        else:
            text.append(HOST_SLOT if kind == "h" else NUMBER_SLOT)
        text.append(rest)
    return "".join(text)


def _group(template: str, found: Sequence[tuple[Skip, tuple[str, ...]]]) -> SkipGroup:
    tally: dict[str, int] = {}
    for skip, _ in found:
        tally[skip.test] = tally.get(skip.test, 0) + 1
    tests = tuple(sorted(tally, key=lambda t: (-tally[t], t)))
    return SkipGroup(fill(template, (values for _, values in found)), len(found), tests,
                     sum(s.control for s, _ in found))


def skip_lines(groups: Sequence[SkipGroup], shown: int, limit: int = 0) -> list[str]:
    """The first ``shown`` groups as lines, then one line for the rest."""
    lines = [g.line(limit) for g in groups[:shown]]
    rest = groups[shown:]
    if rest:
        count = sum(g.count for g in rest)
        lines.append(f"… {count} more skipped for {len(rest)} other "
                     f"reason{'s' * (len(rest) != 1)}")
    return lines
