"""``azl report compare`` as Markdown: per image, what changed, and every metric with its
medians, their confidence intervals, the repetitions behind them and how it was decided."""

from __future__ import annotations

from .compare import CaseChange, Comparison, format_value, md_cell
from .compare_metrics import MetricChange
from .image_diff import render_markdown as image_diff_markdown
from .model import finding_text


def render_markdown(result: Comparison, max_rows: int = 50) -> str:
    regressions = sum(i.regressions for i in result.images)
    lines = ["## azl report compare", "",
             f"Base `{result.base}` → current `{result.current}`", ""]
    if len(result.history) > 1:
        lines += [f"Metrics judged against a history of {len(result.history)} runs "
                  f"(`{result.history[0]}` … `{result.history[-1]}`); outcomes against the "
                  "last.", ""]
    if result.regressed:
        lines.append(f"**REGRESSED**: {regressions} regression(s) (new failures, or metrics "
                     "significantly worse than their tolerance).")
    else:
        lines.append("**OK**: no new failures, no metric regressions.")
    lines += ["", "| image | compared with | new failures | metric regressions | fixed "
              "| still failing | waived | flaky | new tests | removed tests |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i in result.images:
        lines.append(
            f"| {md_cell(i.image)} | {md_cell(i.base_image or '(none)')} | "
            f"{len(i.new_failures)} | "
            f"{len(i.metric_regressions)} | {len(i.fixed)} | {len(i.still_failing)} | "
            f"{_before_now(i.waived)} | {_before_now(i.flaky)} | "
            f"{len(i.new_tests)} | {len(i.removed_tests)} |"
        )
    for name in result.only_in_base:
        lines.append(f"| {md_cell(name)} (only in base) | | | | | | | | | |")
    for i in result.images:
        lines += ["", f"### {md_cell(i.image)}"]
        if i.base_image and i.base_image != i.image:
            lines.append(f"Compared with `{i.base_image}` (same os, variant and target).")
        if i.base_image is None:
            lines.append("No base report for this image: every test is new.")
        lines.append(f"{i.metrics_compared} metric value(s) compared "
                     f"({len(i.metric_inconclusive)} inconclusive); waived "
                     f"{_before_now(i.waived)}, flaky {_before_now(i.flaky)} (before → now).")
        if i.image_diff is not None:
            lines += ["", *image_diff_markdown(i.image_diff, "Image changes since the base run",
                                               level=4, max_rows=max_rows)]
        elif i.image_note:
            lines += ["", md_cell(i.image_note, 400)]
        lines += _case_table("New failures", i.new_failures, max_rows, message=True)
        lines += _case_table("Hardening controls that passed before (among the new "
                             "failures)", i.control_regressions, max_rows, message=True)
        lines += _case_table("Newly waived (failing, accepted by a waiver)", i.newly_waived,
                             max_rows, message=True)
        lines += _metric_table("Metric regressions", i.metric_regressions, max_rows)
        lines += _metric_table("Inconclusive (beyond the tolerance, too few repetitions to "
                               "tell; not a gate)", i.metric_inconclusive, max_rows)
        lines += _case_table("Fixed", i.fixed, max_rows)
        lines += _case_table("Still failing", i.still_failing, max_rows, message=True)
        lines += _case_table("New tests", i.new_tests, max_rows)
        lines += _case_table("Removed tests", i.removed_tests, max_rows)
        lines += _metric_table("Metrics", _metrics_in_order(i.metrics), max_rows)
    return "\n".join(lines) + "\n"


def _before_now(pair: tuple[int, int]) -> str:
    return f"{pair[0]} → {pair[1]}" if pair[0] != pair[1] else str(pair[1])


_VERDICT_ORDER = {"regression": 0, "inconclusive": 1, "worse, not a gate": 2, "improvement": 3,
                  "within noise": 4}


def _metrics_in_order(rows: list[MetricChange]) -> list[MetricChange]:
    return sorted(rows, key=lambda r: _VERDICT_ORDER[r.verdict])


def _case_table(title: str, rows: list[CaseChange], max_rows: int,
                message: bool = False) -> list[str]:
    if not rows:
        return []
    head = "| test | host | before | now |" + (" message |" if message else "")
    sep = "|---|---|---|---|" + ("---|" if message else "")
    out = ["", f"**{title}** ({len(rows)})", "", head, sep]
    for r in rows[:max_rows]:
        line = f"| {md_cell(r.test)} | {md_cell(r.host or '')} | {r.base} | {r.current} |"
        out.append(line + (f" {md_cell(finding_text(r.message))} |" if message else ""))
    if len(rows) > max_rows:
        out.append(f"| … {len(rows) - max_rows} more | | | |" + (" |" if message else ""))
    return out


def format_change(row: MetricChange) -> str:
    return f"{row.change:+.1%}" if row.base else f"{row.change:+.4g} (abs)"


def format_band(row: MetricChange) -> str:
    text = f"±{format_value(row.band, row.unit)}"
    if row.band_from == "tolerance":
        return f"{text} ({row.tolerance * 100:g}% tolerance)"
    if row.band_from == "history":
        return f"{text} (3 x the history's spread)"
    return f"{text} ({row.band_from})"


def format_before(row: MetricChange) -> str:
    """The base side: median with its interval and repetitions (the history's, pooled)."""
    if row.rule == "history":
        pooled = f", {row.base_ci.describe(row.unit)} pooled" if row.base_ci else ""
        return f"{format_value(row.base, row.unit)} (median of {row.history_runs} runs{pooled})"
    if row.base_ci is not None:
        return row.base_ci.describe(row.unit)
    return format_value(row.base, row.unit)


def format_now(row: MetricChange) -> str:
    if row.current_ci is not None:
        return row.current_ci.describe(row.unit)
    return format_value(row.current, row.unit)


def decided_by(row: MetricChange) -> str:
    """How the verdict came about, in words a reader can check."""
    if row.rule == "range":
        return f"{row.note}, band {format_band(row)}"
    if row.rule == "history":
        return f"history: {row.note}; band {format_band(row)}"
    return f"rank test: {row.note}"


def describe_change(row: MetricChange) -> str:
    """One line: ``test metric before -> now (change; how decided): verdict``."""
    return (f"{row.test} {row.metric} {format_before(row)} -> {format_now(row)} "
            f"({format_change(row)}; {decided_by(row)}): {row.verdict}")


def _metric_table(title: str, rows: list[MetricChange], max_rows: int) -> list[str]:
    if not rows:
        return []
    out = ["", f"**{title}** ({len(rows)})", "",
           "| test | metric | better | before: median [CI] | now: median [CI] | change "
           "| decided by | verdict |",
           "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows[:max_rows]:
        out.append(
            f"| {md_cell(r.test)} | {md_cell(r.metric)} | {r.better} | "
            f"{md_cell(format_before(r))} | {md_cell(format_now(r))} | "
            f"{format_change(r)} | {md_cell(decided_by(r))} | {r.verdict} |"
        )
    if len(rows) > max_rows:
        out.append(f"| … {len(rows) - max_rows} more | | | | | | | |")
    return out
