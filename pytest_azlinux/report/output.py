"""Lines a check puts in its test's report: never printed from a hook (outside the test's
capture they land in the terminal's progress line), always added to the report.

The lines become a captured-stdout section of the phase's report (``REPORT_OUTPUT_KEY``):
``-rP``/``-rA`` show it, pytest's ``--junit-xml`` writes it as ``<system-out>`` (with any
``junit_logging``: report/pytest_junit.py adds it where pytest would not) and the per-image
JUnit as the case's ``<system-out>`` (report/collector.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from .model import REPORT_OUTPUT_KEY, REPORT_OUTPUT_SECTION


def add_report_output(item: pytest.Item, lines: Iterable[str], when: str = "call") -> None:
    """Add ``lines`` to the report of ``item``'s phase ``when`` (nothing when empty)."""
    text = "\n".join(lines)
    if text:
        item.add_report_section(when, REPORT_OUTPUT_KEY, text + "\n")


def report_output(report: pytest.TestReport, *, all_phases: bool = False) -> str:
    """The lines checks added to this phase's report (every phase's so far: ``all_phases``;
    a report carries the sections of the phases before it too)."""
    mine = f" {report.when}"
    return "".join(content for title, content in report.sections
                   if title.startswith(REPORT_OUTPUT_SECTION)
                   and (all_phases or title.endswith(mine)))
