"""A Markdown summary of one run: a table of images, the run's skips grouped by reason, then
per image its failures (with the findings themselves), waived and flaky tests, hardening
score and metrics.

Meant for a CI run page (``GITHUB_STEP_SUMMARY``) or a pull request comment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .compare import ImageRun, format_value, load_images, md_cell
from .failures import group_failures
from .model import (
    NO_THRESHOLD,
    OUTCOMES,
    PROP_CONTROL_SEVERITY,
    SEVERITIES,
    CaseRecord,
    Metric,
    finding_text,
)
from .skips import group_skips, skips_of

FINDINGS_PER_CHECK = 5  # distinct findings listed per failing check


@dataclass(frozen=True)
class ImageCounts:
    passed: int
    failed: int
    error: int
    waived: int
    skipped: int
    flaky: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.error + self.waived + self.skipped

    def as_dict(self) -> dict[str, int]:
        return {"passed": self.passed, "failed": self.failed, "error": self.error,
                "waived": self.waived, "skipped": self.skipped}


def counts_of(cases: Iterable[CaseRecord]) -> ImageCounts:
    seen = dict.fromkeys(OUTCOMES, 0)
    flaky = 0
    for case in cases:
        seen[case.outcome] += 1
        flaky += bool(case.flaky_attempts)
    return ImageCounts(seen["passed"], seen["failed"], seen["error"], seen["waived"],
                       seen["skipped"], flaky)


@dataclass(frozen=True)
class Score:
    """Hardening controls of one severity: passed of those that apply (skips do not)."""

    severity: str
    passed: int
    applicable: int

    def describe(self) -> str:
        return f"{self.passed}/{self.applicable}"


def hardening_scores(cases: Iterable[CaseRecord]) -> list[Score]:
    """Per severity (high, medium, low, then any other), and ``all`` last; [] without controls."""
    passed: dict[str, int] = {}
    applicable: dict[str, int] = {}
    for case in cases:
        if not case.control or case.outcome == "skipped":
            continue
        severity = case.properties.get(PROP_CONTROL_SEVERITY) or "unrated"
        applicable[severity] = applicable.get(severity, 0) + 1
        passed[severity] = passed.get(severity, 0) + (case.outcome == "passed")
    if not applicable:
        return []
    order = [s for s in SEVERITIES if s in applicable]
    order += sorted(set(applicable) - set(SEVERITIES))
    scores = [Score(s, passed.get(s, 0), applicable[s]) for s in order]
    scores.append(Score("all", sum(passed.values()), sum(applicable.values())))
    return scores


def summarize_paths(paths: Iterable[Path], max_rows: int = 30) -> str:
    return render_summary(load_images(paths), max_rows=max_rows)


def verdict_of(c: ImageCounts) -> str:
    if c.failed or c.error:
        return "❌ failed"
    return "✅ passed" if c.passed or c.waived else "none run"


def render_summary(images: Mapping[str, ImageRun], max_rows: int = 30,
                   title: str = "azl test reports") -> str:
    lines = [f"## {title}", "",
             "| image | result | passed | failed | errors | waived | flaky | skipped | "
             "hosts | kernels |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name in sorted(images):
        run = images[name]
        c = counts_of(run.cases.values())
        lines.append(
            f"| {md_cell(name)} | {verdict_of(c)} | {c.passed} | {c.failed} | {c.error} | "
            f"{c.waived} | {c.flaky} | {c.skipped} | "
            f"{md_cell(run.properties.get('azl.hosts', ''))} | "
            f"{md_cell(run.properties.get('azl.kernels', ''))} |"
        )
    lines += _skips_section(images, max_rows)
    for name in sorted(images):
        lines += _image_section(images[name], max_rows)
    return "\n".join(lines) + "\n"


def _more(rows: int, shown: int, columns: int) -> list[str]:
    if rows <= shown:
        return []
    return [f"| … {rows - shown} more |" + " |" * (columns - 1)]


def _skips_section(images: Mapping[str, ImageRun], max_rows: int) -> list[str]:
    """Every image's skips, one row per reason (hosts and numbers folded), largest first."""
    groups = group_skips(s for run in images.values() for s in skips_of(run.cases.values()))
    if not groups:
        return []
    out = ["", f"**Skipped, by reason** ({sum(g.count for g in groups)})", "",
           "| skipped | reason |", "|---|---|"]
    for group in groups[:max_rows]:
        out.append(f"| {md_cell(group.what)} | {md_cell(group.reason, 300)} |")
    return out + _more(len(groups), max_rows, 2)


def _image_section(run: ImageRun, max_rows: int) -> list[str]:
    props = run.properties
    out = ["", f"### {md_cell(run.name)}"]
    facts = [f"{label} `{md_cell(props[key])}`" for key, label in (
        ("azl.target", "target"), ("azl.version", "version"), ("azl.variant", "variant"),
        ("azl.node_image_version", "node image"), ("azl.os_sku", "OS SKU"),
        ("azl.started", "started"),
    ) if props.get(key)]
    if facts:
        out.append(", ".join(facts))
    cases = sorted(run.cases.values(), key=lambda c: c.nodeid)
    scores = hardening_scores(cases)
    if scores:
        out += ["", "**Hardening score** (controls passed / applicable): " + ", ".join(
            f"{s.severity} {s.describe()}" for s in scores)]
    out += _failures_section(cases, max_rows)
    waived = [c for c in cases if c.outcome == "waived"]
    if waived:
        out += ["", f"**Waived** ({len(waived)}: failing, accepted by a waiver)", "",
                "| test | host | waiver | finding |", "|---|---|---|---|"]
        for case in waived[:max_rows]:
            out.append(f"| {md_cell(case.nodeid)} | {md_cell(case.host or '')} | "
                       f"{md_cell(case.waiver_text(), 200)} | "
                       f"{md_cell(finding_text(case.waived_finding), 200)} |")
        out += _more(len(waived), max_rows, 4)
    flaky = [c for c in cases if c.flaky_attempts]
    if flaky:
        out += ["", f"**Flaky** ({len(flaky)}: passed after infrastructure errors)", "",
                "| test | host | attempts |", "|---|---|---:|"]
        for case in flaky[:max_rows]:
            out.append(f"| {md_cell(case.nodeid)} | {md_cell(case.host or '')} | "
                       f"{case.flaky_attempts} |")
        out += _more(len(flaky), max_rows, 3)
    metrics = [(c, m) for c in cases for m in c.metrics]
    if metrics:
        unjudged = sum(1 for _, m in metrics if m.threshold == NO_THRESHOLD)
        out += ["", f"**Metrics** ({len(metrics)})", ""]
        if unjudged:
            out += [f"{unjudged} measured without a threshold: they decide nothing until "
                    "the target's settings give one.", ""]
        out += ["| test | host | metric | value | range | better | threshold |",
                "|---|---|---|---:|---|---|---|"]
        for case, metric in metrics[:max_rows]:
            out.append(f"| {md_cell(case.nodeid)} | {md_cell(case.host or '')} | "
                       f"{md_cell(metric.name)} | {format_value(metric.value, metric.unit)} | "
                       f"{format_range(metric)} | {metric.better} | "
                       f"{md_cell(format_threshold(metric))} |")
        out += _more(len(metrics), max_rows, 7)
    return out


def _failures_section(cases: list[CaseRecord], max_rows: int,
                      findings: int = FINDINGS_PER_CHECK) -> list[str]:
    """One row per distinct finding of each failing check (``report/failures.py``): a pool's
    312 failures of one check are a row or two, not 312."""
    groups = group_failures(cases)
    if not groups:
        return []
    failing = sum(g.count for g in groups)
    out = ["", f"**Failures and errors** ({failing} in {len(groups)} "
               f"check{'s' * (len(groups) != 1)})", "",
           "| test | where | finding | hosts |", "|---|---|---|---|"]
    rows = shown = 0
    for group in groups:
        if rows >= max_rows:
            break
        shown += 1
        test, where = md_cell(group.check), md_cell(group.where)
        for found in group.findings[:findings]:
            word = "" if found.outcome == "failed" else "ERROR "
            out.append(f"| {test} | {where} | {found.count} x {word}{md_cell(found.text, 300)} "
                       f"| {md_cell(found.hosts_text())} |")
            test = where = ""  # the check's cells once, its findings under it
            rows += 1
        rest = group.findings[findings:]
        if rest:
            out.append(f"| | | … {len(rest)} more distinct findings "
                       f"({sum(f.count for f in rest)} {group.unit}) | |")
    if shown < len(groups):
        hidden = groups[shown:]
        out.append(f"| … {len(hidden)} more checks ({sum(g.count for g in hidden)} failing) "
                   "| | | |")
    return out


def format_range(metric: Metric) -> str:
    if metric.low is None or metric.high is None:
        return ""
    return f"{metric.low:.4g} to {metric.high:.4g}"


def format_threshold(metric: Metric) -> str:
    if metric.threshold is None:
        return ""
    return "no threshold" if metric.threshold == NO_THRESHOLD else metric.threshold
