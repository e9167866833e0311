"""GitHub Actions: the run summary on the run page and ``::error`` annotations.

Called by the plugin at the end of a session with the reports it wrote; does nothing
outside GitHub Actions (``GITHUB_ACTIONS`` is not ``true``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ..errors import ReportError
from .collector import ImageReport
from .compare import ImageRun, load_run
from .failures import group_failures
from .summary import render_summary

# GitHub shows only the first few annotations of a step; more is noise in the log.
MAX_ANNOTATIONS = 50
ANNOTATION_CHARS = 2000  # of one annotation's message

def escape_data(text: str) -> str:
    """Escape the message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (``title=...``) of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_lines(images: Mapping[str, ImageRun], limit: int = MAX_ANNOTATIONS) -> list[str]:
    """``::error title=...::message`` lines, one per failing check of an image (its failures
    grouped across hosts, ``report/failures.py``): the check, on how many hosts, and its
    distinct findings with their counts and a few hosts."""
    lines: list[str] = []
    groups = [(name, group) for name in sorted(images)
              for group in group_failures(images[name].cases.values())]
    for name, group in groups[:limit]:
        title = f"{name}: {group.headline}"
        # The findings themselves (what was found, what was expected), not "1 finding".
        message = "\n".join(group.lines()[1:])[:ANNOTATION_CHARS]
        lines.append(f"::error title={escape_property(title)}::{escape_data(message)}")
    if len(groups) > limit:
        rest = groups[limit:]
        lines.append(f"::warning title=azl::{len(rest)} more failing checks "
                     f"({sum(g.count for _, g in rest)} failing tests), see the run summary "
                     "and the JUnit reports")
    return lines


def publish(reports: Sequence[ImageReport], *, env: Mapping[str, str] | None = None,
            stream: TextIO | None = None) -> bool:
    """Publish the written reports to GitHub Actions; False when not running there."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true" or not reports:
        return False
    out = stream or sys.stdout
    images: dict[str, ImageRun] = {}
    for report in reports:
        try:
            images.update(load_run(report.path))
        except ReportError as exc:  # never break the test run over its summary
            out.write(f"\n::warning title=azl::{escape_data(str(exc))}\n")
    summary_file = env.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with Path(summary_file).open("a", encoding="utf-8") as fh:
                fh.write(render_summary(images) + "\n")
        except OSError as exc:
            out.write(f"\n::warning title=azl::cannot write GITHUB_STEP_SUMMARY: "
                      f"{escape_data(str(exc))}\n")
    lines = annotation_lines(images)
    if lines:
        # Workflow commands count only at the start of a line; pytest's progress line may
        # not have ended yet.
        out.write("\n" + "\n".join(lines) + "\n")
        out.flush()
    return True
