"""Read runs of per-image reports back, and compare two runs per image.

A *run* is a directory of per-image JUnit files (what one pytest run writes) or a single
file. Comparing a base run with a current one says, per image, what newly fails, what was
fixed, what still fails, which tests appeared or went away, and which metrics got worse
than a tolerance in their own direction (``metric.<name>.better``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import (
    ReportError,
)
from .junit import read_cases
from .model import CaseRecord, Metric

FAILING = frozenset({"failed", "error"})
DEFAULT_TOLERANCE = 0.10



@dataclass
class ImageRun:
    """One image's test cases in one run (possibly gathered from several files)."""

    name: str
    properties: dict[str, str]
    cases: dict[str, CaseRecord]
    sources: list[Path] = field(default_factory=list)

    @property
    def lineage(self) -> tuple[str, str, str] | None:
        """(os_id, variant, target): what stays the same when a new image version rolls."""
        os_id = self.properties.get("azl.os_id")
        if not os_id:
            return None
        return (os_id, self.properties.get("azl.variant", "default"),
                self.properties.get("azl.target", ""))


def report_files(path: Path) -> list[Path]:
    """The JUnit files of a run: the file itself, or the ``*.xml`` files of a directory."""
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*.xml") if p.is_file())
    if not files:
        raise ReportError(f"{path}: no JUnit reports (*.xml) in this directory")
    return files


def read_report(path: Path) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """:func:`read_cases` with a one-line error for anything that is not a JUnit report."""
    try:
        head = path.read_bytes()[:4096].lstrip()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.startswith(b"<"):
        raise ReportError(f"{path}: not a JUnit report (not XML)")
    try:
        return read_cases(path)
    except Exception as exc:  # junitparser raises parser-specific errors; all mean "bad file"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if reason == "Invalid format.":  # junitparser's words for a foreign root element
            reason = "the root element is neither <testsuites> nor <testsuite>"
        raise ReportError(f"{path}: not a JUnit report ({reason})") from None


def load_run(path: Path) -> dict[str, ImageRun]:
    """All images of a run, by image (suite) name."""
    images: dict[str, ImageRun] = {}
    for file in report_files(path):
        suite_props, cases = read_report(file)
        if not suite_props:
            raise ReportError(f"{file}: not a JUnit report (no <testsuite>)")
        for name, props in suite_props.items():
            run = images.setdefault(name, ImageRun(name, dict(props), {}))
            run.sources.append(file)
        for case in cases:
            image = case.image or ""
            images[image].cases[case.nodeid] = case
    return images


# -- tolerances -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    """Relative tolerance per metric name (0.05 = 5 %), with a default."""

    per_metric: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_TOLERANCE

    def of(self, metric: str) -> float:
        return self.per_metric.get(metric, self.default)


def load_tolerances(path: Path | None, default: float | None = None) -> Tolerances:
    """Read ``{tolerances: {throughput_gbps: 0.05, default: 0.10}}`` from a YAML file."""
    values: dict[str, float] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ReportError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict) or not isinstance(raw.get("tolerances", {}), dict):
            raise ReportError(f"{path}: expected a mapping 'tolerances: {{metric: fraction}}'")
        unknown = sorted(set(raw) - {"tolerances"})
        if unknown:
            raise ReportError(f"{path}: unknown field(s) {', '.join(unknown)} "
                              "(expected 'tolerances')")
        for name, value in (raw.get("tolerances") or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ReportError(f"{path}: tolerances.{name}: expected a number >= 0 "
                                  f"(a fraction, 0.05 = 5%), got {value!r}")
            values[str(name)] = float(value)
    fallback = values.pop("default", DEFAULT_TOLERANCE)
    if default is not None:
        if default < 0:
            raise ReportError(f"--tolerance: expected a number >= 0, got {default}")
        fallback = default
    return Tolerances(values, fallback)


# -- comparison -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseChange:
    """A test whose outcome is worth listing."""

    test: str
    host: str | None
    base: str  # outcome in the base run, "absent" for a new test
    current: str  # outcome now, "absent" for a removed test
    message: str = ""


@dataclass(frozen=True)
class MetricChange:
    """A metric that moved beyond its tolerance (``change`` is relative, signed)."""

    test: str
    host: str | None
    metric: str
    unit: str
    better: Literal["higher", "lower"]
    base: float
    current: float
    change: float
    tolerance: float


@dataclass
class ImageComparison:
    """What changed for one image between the base and the current run."""

    image: str
    base_image: str | None  # the base image paired with it (differs when the version rolled)
    new_failures: list[CaseChange] = field(default_factory=list)
    fixed: list[CaseChange] = field(default_factory=list)
    still_failing: list[CaseChange] = field(default_factory=list)
    new_tests: list[CaseChange] = field(default_factory=list)
    removed_tests: list[CaseChange] = field(default_factory=list)
    metric_regressions: list[MetricChange] = field(default_factory=list)
    metric_improvements: list[MetricChange] = field(default_factory=list)
    metrics_compared: int = 0

    @property
    def regressed(self) -> bool:
        return bool(self.new_failures or self.metric_regressions)


@dataclass
class Comparison:
    base: str
    current: str
    images: list[ImageComparison]
    only_in_base: list[str]  # images with no counterpart in the current run

    @property
    def regressed(self) -> bool:
        return any(i.regressed for i in self.images)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["regressed"] = self.regressed
        for image, data in zip(self.images, out["images"], strict=True):
            data["regressed"] = image.regressed
        return out


def pair_images(
    base: Mapping[str, ImageRun], current: Mapping[str, ImageRun]
) -> tuple[list[tuple[ImageRun | None, ImageRun]], list[str]]:
    """Pair current images with base ones: same name first, then the same lineage.

    A nightly run usually tests a newer image version than the last good run; when one
    image of an (os_id, variant, target) lineage is left on each side they are compared.
    """
    pairs: dict[str, ImageRun | None] = {}
    left_base = dict(base)
    for name in current:
        pairs[name] = left_base.pop(name, None)
    unmatched = [n for n, b in pairs.items() if b is None]
    for name in unmatched:
        lineage = current[name].lineage
        if lineage is None:
            continue
        same_now = [n for n in unmatched if current[n].lineage == lineage]
        same_before = [n for n, run in left_base.items() if run.lineage == lineage]
        if len(same_now) == 1 and len(same_before) == 1:
            pairs[name] = left_base.pop(same_before[0])
    return [(pairs[n], current[n]) for n in sorted(current)], sorted(left_base)


def compare_runs(base_path: Path, current_path: Path, tolerances: Tolerances) -> Comparison:
    base = load_run(base_path)
    current = load_run(current_path)
    pairs, only_in_base = pair_images(base, current)
    images = [compare_image(b, c, tolerances) for b, c in pairs]
    return Comparison(str(base_path), str(current_path), images, only_in_base)


def compare_image(base: ImageRun | None, current: ImageRun, tol: Tolerances) -> ImageComparison:
    out = ImageComparison(current.name, base.name if base else None)
    before = base.cases if base else {}
    for nodeid, case in sorted(current.cases.items()):
        old = before.get(nodeid)
        if old is None:
            change = CaseChange(nodeid, case.host, "absent", case.outcome, case.message)
            out.new_tests.append(change)
            if case.outcome in FAILING:
                out.new_failures.append(change)
            continue
        change = CaseChange(nodeid, case.host, old.outcome, case.outcome, case.message)
        if case.outcome in FAILING:
            (out.still_failing if old.outcome in FAILING else out.new_failures).append(change)
        elif old.outcome in FAILING and case.outcome == "passed":
            out.fixed.append(change)
        _compare_metrics(out, nodeid, case.host, old.metrics, case.metrics, tol)
    for nodeid, old in sorted(before.items()):
        if nodeid not in current.cases:
            out.removed_tests.append(CaseChange(nodeid, old.host, old.outcome, "absent"))
    return out


def _compare_metrics(
    out: ImageComparison, test: str, host: str | None,
    before: Iterable[Metric], now: Iterable[Metric], tol: Tolerances,
) -> None:
    old = {m.name: m for m in before}
    for metric in now:
        base = old.get(metric.name)
        if base is None or not (math.isfinite(base.value) and math.isfinite(metric.value)):
            continue
        out.metrics_compared += 1
        limit = tol.of(metric.name)
        delta = metric.value - base.value
        # Relative to the base; a base of 0 has no scale, so the tolerance is absolute there.
        change = delta / abs(base.value) if base.value else delta
        worse = -change if metric.better == "higher" else change
        if abs(change) <= limit + 1e-12:
            continue
        entry = MetricChange(test, host, metric.name, metric.unit or base.unit, metric.better,
                             base.value, metric.value, change, limit)
        (out.metric_regressions if worse > 0 else out.metric_improvements).append(entry)


# -- Markdown ---------------------------------------------------------------------------------
def md_cell(text: object, limit: int = 200) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, bounded."""
    one = " ".join(str(text).split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def format_value(value: float, unit: str = "") -> str:
    return f"{value:.4g} {unit}".strip()


def render_markdown(result: Comparison, max_rows: int = 50) -> str:
    regressions = sum(len(i.new_failures) + len(i.metric_regressions) for i in result.images)
    lines = ["## azl report compare", "",
             f"Base `{result.base}` → current `{result.current}`", ""]
    if result.regressed:
        lines.append(f"**REGRESSED**: {regressions} regression(s) "
                     "(new failures or metrics worse than their tolerance).")
    else:
        lines.append("**OK**: no new failures, no metric regressions.")
    lines += ["", "| image | compared with | new failures | metric regressions | fixed "
              "| still failing | new tests | removed tests |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for i in result.images:
        lines.append(
            f"| {md_cell(i.image)} | {md_cell(i.base_image or '(none)')} | "
            f"{len(i.new_failures)} | {len(i.metric_regressions)} | {len(i.fixed)} | "
            f"{len(i.still_failing)} | {len(i.new_tests)} | {len(i.removed_tests)} |"
        )
    for name in result.only_in_base:
        lines.append(f"| {md_cell(name)} (only in base) | | | | | | | |")
    for i in result.images:
        lines += ["", f"### {md_cell(i.image)}"]
        if i.base_image and i.base_image != i.image:
            lines.append(f"Compared with `{i.base_image}` (same os, variant and target).")
        if i.base_image is None:
            lines.append("No base report for this image: every test is new.")
        lines.append(f"{i.metrics_compared} metric value(s) compared.")
        lines += _case_table("New failures", i.new_failures, max_rows, message=True)
        lines += _metric_table("Metric regressions", i.metric_regressions, max_rows)
        lines += _case_table("Fixed", i.fixed, max_rows)
        lines += _case_table("Still failing", i.still_failing, max_rows, message=True)
        lines += _case_table("New tests", i.new_tests, max_rows)
        lines += _case_table("Removed tests", i.removed_tests, max_rows)
        lines += _metric_table("Metric improvements", i.metric_improvements, max_rows)
    return "\n".join(lines) + "\n"


def _case_table(title: str, rows: list[CaseChange], max_rows: int,
                message: bool = False) -> list[str]:
    if not rows:
        return []
    head = "| test | host | before | now |" + (" message |" if message else "")
    sep = "|---|---|---|---|" + ("---|" if message else "")
    out = ["", f"**{title}** ({len(rows)})", "", head, sep]
    for r in rows[:max_rows]:
        line = f"| {md_cell(r.test)} | {md_cell(r.host or '')} | {r.base} | {r.current} |"
        out.append(line + (f" {md_cell(r.message)} |" if message else ""))
    if len(rows) > max_rows:
        out.append(f"| … {len(rows) - max_rows} more | | | |" + (" |" if message else ""))
    return out


def _metric_table(title: str, rows: list[MetricChange], max_rows: int) -> list[str]:
    if not rows:
        return []
    out = ["", f"**{title}** ({len(rows)})", "",
           "| test | metric | better | before | now | change | tolerance |",
           "|---|---|---|---:|---:|---:|---:|"]
    for r in rows[:max_rows]:
        change = f"{r.change:+.1%}" if r.base else f"{r.change:+.4g} (abs)"
        out.append(
            f"| {md_cell(r.test)} | {md_cell(r.metric)} | {r.better} | "
            f"{format_value(r.base, r.unit)} | {format_value(r.current, r.unit)} | "
            f"{change} | {r.tolerance * 100:g}% |"
        )
    if len(rows) > max_rows:
        out.append(f"| … {len(rows) - max_rows} more | | | | | | |")
    return out
