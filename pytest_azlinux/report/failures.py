"""Failures and errors grouped by check across hosts, so a pool's report reads per check.

``test_kernel_cmdline failed on 312 of 1000 hosts`` followed by its distinct findings, each
with its count and a few host names, rather than 312 rows that differ only in the host. A
check is a test function with its parametrization, the run's host names in it folded
(``test_tcp[azl-1->azl-2]`` and ``test_tcp[azl-3->azl-4]`` are one check); findings that
differ only in a host name are one finding (``<host>: unreachable``), numbers are kept
(``found 6.1.0`` and ``found 6.1.2`` are two findings: the values are the news).
Pure: the HTML page, the Markdown summary (the GitHub step summary) and the GitHub
annotations call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import FAILING, CaseRecord, finding_text
from .skips import HOST_SLOT, fill, fold

SHOWN_HOSTS = 3  # host names beside a finding before "and N more"
FINDING_WIDTH = 300


@dataclass(frozen=True, slots=True)
class Finding:
    """Cases of one check that failed (or errored) alike."""

    outcome: str  # failed | error
    text: str  # the finding on one line, host names that differ shown as <host>
    cases: tuple[CaseRecord, ...]  # by host name

    @property
    def count(self) -> int:
        return len(self.cases)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(c.host for c in self.cases if c.host)

    def hosts_text(self, shown: int = SHOWN_HOSTS) -> str:
        """``node-1, node-2, node-3 and 309 more`` ("" for cases without a host)."""
        hosts = self.hosts
        text = ", ".join(hosts[:shown])
        if len(hosts) > shown:
            text += f" and {len(hosts) - shown} more"
        return text

    def line(self, shown: int = SHOWN_HOSTS) -> str:
        """``312 x <finding> (node-1, node-2, node-3 and 309 more)``."""
        where = self.hosts_text(shown)
        word = "" if self.outcome == "failed" else "ERROR "
        return f"{self.count} x {word}{self.text}" + (f" ({where})" if where else "")


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """One check's failures and errors in one image, by distinct finding."""

    check: str  # the test function, e.g. test_kernel_cmdline or test_tcp[<host>-><host>]
    module: str  # its classname (suites.image.test_posture), to tell same names apart
    findings: tuple[Finding, ...]  # most frequent first
    ran: int  # hosts (or runs, for tests without a host) that ran the check
    unit: str  # "hosts" or "runs"

    @property
    def failed(self) -> int:
        return sum(f.count for f in self.findings if f.outcome == "failed")

    @property
    def errors(self) -> int:
        return sum(f.count for f in self.findings if f.outcome != "failed")

    @property
    def count(self) -> int:
        return self.failed + self.errors

    @property
    def cases(self) -> list[CaseRecord]:
        return [c for f in self.findings for c in f.cases]

    @property
    def where(self) -> str:
        """``failed on 312 of 1000 hosts`` (``failed on 3 and errored on 1 of 4 hosts``)."""
        parts = []
        if self.failed:
            parts.append(f"failed on {self.failed}")
        if self.errors:
            parts.append(f"errored on {self.errors}")
        unit = self.unit if self.ran != 1 else self.unit.removesuffix("s")
        return f"{' and '.join(parts)} of {self.ran} {unit}"

    @property
    def headline(self) -> str:
        """``test_kernel_cmdline failed on 312 of 1000 hosts``."""
        return f"{self.check} {self.where}"

    def lines(self, findings: int = 5, shown: int = SHOWN_HOSTS) -> list[str]:
        """The headline, then the first ``findings`` findings, then how many more."""
        out = [self.headline + ":"] + [f.line(shown) for f in self.findings[:findings]]
        rest = self.findings[findings:]
        if rest:
            out.append(f"… {len(rest)} more distinct finding{'s' * (len(rest) != 1)} "
                       f"({sum(f.count for f in rest)} {self.unit})")
        return out


def check_of(case: CaseRecord, hosts: frozenset[str]) -> tuple[str, str]:
    """(classname, test name with the run's host names in it shown as ``<host>``): a test
    parametrized by its host alone is its function's name."""
    name = fill(fold(case.name, hosts, numbers=False)[0], ())
    return case.classname, name.removesuffix(f"[{HOST_SLOT}]")


def group_failures(cases: Iterable[CaseRecord]) -> list[FailureGroup]:
    """The failing cases of ``cases`` (one image's) grouped by check, then by finding; the
    check with most failures first. ``ran`` counts the hosts whose case of the check is
    among ``cases``, whatever its outcome."""
    cases = list(cases)
    hosts = frozenset(c.host for c in cases if c.host)
    ran: dict[tuple[str, str], set[str]] = {}
    failing: dict[tuple[str, str], list[CaseRecord]] = {}
    for case in cases:
        key = check_of(case, hosts)
        ran.setdefault(key, set()).add(case.host or case.nodeid)
        if case.outcome in FAILING:
            failing.setdefault(key, []).append(case)
    groups = []
    for key, members in failing.items():
        everyone = all(c.host for c in members) and all(h in hosts for h in ran[key])
        groups.append(FailureGroup(key[1], key[0], _findings(members, hosts),
                                   len(ran[key]), "hosts" if everyone else "runs"))
    groups.sort(key=lambda g: (-g.count, g.check, g.module))
    return groups


def _findings(cases: Sequence[CaseRecord], hosts: frozenset[str]) -> tuple[Finding, ...]:
    members: dict[tuple[str, str], list[tuple[CaseRecord, tuple[str, ...]]]] = {}
    for case in cases:
        text = finding_text(case.message, FINDING_WIDTH) or "(no message)"
        template, values = fold(text, hosts, numbers=False)
        members.setdefault((case.outcome, template), []).append((case, values))
    found = [Finding(outcome, fill(template, (v for _, v in group)),
                     tuple(sorted((c for c, _ in group), key=lambda c: (c.host or "", c.nodeid))))
             for (outcome, template), group in members.items()]
    found.sort(key=lambda f: (-f.count, f.outcome, f.text))
    return tuple(found)
