"""One line per image at the end of a run: the verdict a newcomer reads first.

``azurelinux-3.0.20251021: PASS 41 · WAIVED 18 · SKIP 42``, or ``FAIL 2 · PASS 39 · ...``
followed by the first findings; then the run's skips grouped by reason (``423 hardening
controls: not applicable: ...``); then where the reports are. Pure: the plugin prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .collector import ImageReport
from .skips import group_skips, skip_lines

# Order and words of the counts on a verdict line; zeros are left out.
WORDS = (("failed", "FAIL"), ("error", "ERROR"), ("passed", "PASS"), ("waived", "WAIVED"),
         ("flaky", "FLAKY"), ("skipped", "SKIP"))
FIRST_FINDINGS = 3
SKIP_REASONS = 6  # reasons listed under "skipped"; the HTML page has them all
SKIP_REASON_WIDTH = 160  # a reason longer than this is cut in the terminal


def counts_line(counts: Mapping[str, int]) -> str:
    parts = [f"{word} {counts[key]}" for key, word in WORDS if counts.get(key)]
    return " · ".join(parts) if parts else "nothing run"


def verdict_lines(reports: Sequence[ImageReport], html: Path | None = None,
                  first: int = FIRST_FINDINGS) -> list[str]:
    """One line per image, its first findings indented under it, the skips by reason, then
    where the reports are."""
    lines: list[str] = []
    for report in reports:
        note = (f" ({report.unjudged} measured without a threshold)"
                if report.unjudged else "")
        lines.append(f"{report.name}: {counts_line(report.counts)}{note}")
        lines += [f"    {finding}" for finding in report.findings[:first]]
        failing = report.counts.get("failed", 0) + report.counts.get("error", 0)
        if failing > min(first, len(report.findings)):
            lines.append(f"    … {failing - min(first, len(report.findings))} more in "
                         f"{report.path}")
    groups = group_skips(skip for report in reports for skip in report.skips)
    if groups:
        lines.append(f"skipped {sum(g.count for g in groups)}, by reason:")
        lines += [f"    {line}" for line in skip_lines(groups, SKIP_REASONS, SKIP_REASON_WIDTH)]
    if reports:
        where = str(reports[0].path.parent)
        lines.append(f"reports: {where}/" + (f" (open {html})" if html else ""))
    return lines
