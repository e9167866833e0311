"""Read runs of per-image reports back, and compare two runs per image.

A *run* is a directory of per-image JUnit files (what one pytest run writes) or a single
file. Comparing a base run with a current one says, per image, what newly fails, what was
fixed, what still fails, which tests appeared or went away, and which metrics got worse
than a tolerance in their own direction (``metric.<name>.better``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ReportError
from .junit import records_of, stream_report
from .model import FAILING, PROP_CONTROL_SEVERITY, CaseRecord, Metric, finding_text

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


def _check_xml(path: Path) -> None:
    try:
        head = path.read_bytes()[:4096].lstrip()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.startswith(b"<"):
        raise ReportError(f"{path}: not a JUnit report (not XML)")


def stream_checked(path: Path) -> Iterator[tuple[str, str, ET.Element]]:
    """:func:`stream_report` with a one-line error for anything that is not a JUnit report."""
    _check_xml(path)
    try:
        yield from stream_report(path)
    except ET.ParseError as exc:
        raise ReportError(f"{path}: not a JUnit report ({exc})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_report(path: Path) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """Suite properties per suite name and the test cases of one report file (streamed)."""
    return records_of(stream_checked(path))


def load_images(paths: Iterable[Path]) -> dict[str, ImageRun]:
    """The images of several report directories (a run and its shards), cases combined."""
    images: dict[str, ImageRun] = {}
    for path in paths:
        for name, run in load_run(path).items():
            known = images.setdefault(name, ImageRun(name, run.properties, {}))
            known.cases.update(run.cases)
            known.sources.extend(run.sources)
    return images


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


MetricVerdict = Literal["regression", "improvement", "within noise", "worse, not a gate"]


@dataclass(frozen=True)
class MetricChange:
    """One metric compared: ``change`` is relative (signed), ``band`` the absolute noise band.

    A change is a regression only when it is in the metric's bad direction and larger than
    ``band``: the tolerance (relative to the base) and the measured range of either run,
    whichever is wider. Metrics that are not gates (durations, unless declared) are shown
    but never regress.
    """

    test: str
    host: str | None
    metric: str
    unit: str
    better: Literal["higher", "lower"]
    base: float
    current: float
    change: float
    tolerance: float
    band: float = 0.0
    band_from: str = "tolerance"  # tolerance | base range | current range
    verdict: MetricVerdict = "within noise"


@dataclass
class ImageComparison:
    """What changed for one image between the base and the current run."""

    image: str
    base_image: str | None  # the base image paired with it (differs when the version rolled)
    new_failures: list[CaseChange] = field(default_factory=list)
    # The new failures that are hardening controls which passed on that host before.
    control_regressions: list[CaseChange] = field(default_factory=list)
    fixed: list[CaseChange] = field(default_factory=list)
    still_failing: list[CaseChange] = field(default_factory=list)
    newly_waived: list[CaseChange] = field(default_factory=list)
    new_tests: list[CaseChange] = field(default_factory=list)
    removed_tests: list[CaseChange] = field(default_factory=list)
    metric_regressions: list[MetricChange] = field(default_factory=list)
    metric_improvements: list[MetricChange] = field(default_factory=list)
    metrics: list[MetricChange] = field(default_factory=list)  # every metric compared
    metrics_compared: int = 0
    waived: tuple[int, int] = (0, 0)  # (base, current)
    flaky: tuple[int, int] = (0, 0)

    @property
    def regressed(self) -> bool:
        return bool(self.new_failures or self.metric_regressions)

    @property
    def regressions(self) -> int:
        return len(self.new_failures) + len(self.metric_regressions)


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
    out.waived = (_count(before.values(), "waived"), _count(current.cases.values(), "waived"))
    out.flaky = (sum(1 for c in before.values() if c.flaky_attempts),
                 sum(1 for c in current.cases.values() if c.flaky_attempts))
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
        if case.outcome == "waived" and old.outcome != "waived":
            out.newly_waived.append(CaseChange(nodeid, case.host, old.outcome, "waived",
                                               case.waiver_text()))
        _compare_metrics(out, nodeid, case.host, old.metrics, case.metrics, tol)
    for nodeid, old in sorted(before.items()):
        if nodeid not in current.cases:
            out.removed_tests.append(CaseChange(nodeid, old.host, old.outcome, "absent"))
    out.control_regressions = _control_regressions(before, current.cases, out.new_failures)
    return out


def _count(cases: Iterable[CaseRecord], outcome: str) -> int:
    return sum(1 for c in cases if c.outcome == outcome)


def _control_regressions(before: Mapping[str, CaseRecord], now: Mapping[str, CaseRecord],
                         new_failures: list[CaseChange]) -> list[CaseChange]:
    """The new failures that are hardening controls which passed on the same host before,
    matched by control id and host (a renamed test keeps its control)."""
    passed = {(c.control, c.host) for c in before.values() if c.control and c.outcome == "passed"}
    out = []
    for change in new_failures:
        case = now[change.test]
        if case.control and (case.control, case.host) in passed:
            severity = case.properties.get(PROP_CONTROL_SEVERITY, "")
            label = f"{case.control} ({severity})" if severity else case.control
            out.append(CaseChange(change.test, change.host, "passed", change.current,
                                  f"{label}: {finding_text(change.message)}"))
    return out


def judge_metric(test: str, host: str | None, base: Metric, current: Metric,
                 tolerance: float) -> MetricChange:
    """Compare one metric of one test: the change, the noise band it must exceed, a verdict."""
    delta = current.value - base.value
    # Relative to the base; a base of 0 has no scale, so the tolerance is absolute there.
    scale = abs(base.value) or 1.0
    change = delta / abs(base.value) if base.value else delta
    band, band_from = tolerance * scale, "tolerance"
    for spread, source in ((base.spread, "base range"), (current.spread, "current range")):
        if spread > band:
            band, band_from = spread, source
    worse = delta < 0 if current.better == "higher" else delta > 0
    verdict: MetricVerdict = "within noise"
    if abs(delta) > band + 1e-12 * scale:
        if not worse:
            verdict = "improvement"
        elif current.gated and base.gated:
            verdict = "regression"
        else:
            verdict = "worse, not a gate"
    return MetricChange(test, host, current.name, current.unit or base.unit, current.better,
                        base.value, current.value, change, tolerance, band, band_from, verdict)


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
        declared = [t for t in (base.tolerance, metric.tolerance) if t is not None]
        entry = judge_metric(test, host, base, metric, max([tol.of(metric.name), *declared]))
        out.metrics.append(entry)
        if entry.verdict == "regression":
            out.metric_regressions.append(entry)
        elif entry.verdict == "improvement":
            out.metric_improvements.append(entry)


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
    regressions = sum(i.regressions for i in result.images)
    lines = ["## azl report compare", "",
             f"Base `{result.base}` → current `{result.current}`", ""]
    if result.regressed:
        lines.append(f"**REGRESSED**: {regressions} regression(s) (new failures, or metrics "
                     "worse than their noise band).")
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
        lines.append(f"{i.metrics_compared} metric value(s) compared; waived "
                     f"{_before_now(i.waived)}, flaky {_before_now(i.flaky)} (before → now).")
        lines += _case_table("New failures", i.new_failures, max_rows, message=True)
        lines += _case_table("Hardening controls that passed before (among the new "
                             "failures)", i.control_regressions, max_rows, message=True)
        lines += _case_table("Newly waived (failing, accepted by a waiver)", i.newly_waived,
                             max_rows, message=True)
        lines += _metric_table("Metric regressions", i.metric_regressions, max_rows)
        lines += _case_table("Fixed", i.fixed, max_rows)
        lines += _case_table("Still failing", i.still_failing, max_rows, message=True)
        lines += _case_table("New tests", i.new_tests, max_rows)
        lines += _case_table("Removed tests", i.removed_tests, max_rows)
        lines += _metric_table("Metrics", _metrics_in_order(i.metrics), max_rows)
    return "\n".join(lines) + "\n"


def _before_now(pair: tuple[int, int]) -> str:
    return f"{pair[0]} → {pair[1]}" if pair[0] != pair[1] else str(pair[1])


_VERDICT_ORDER = {"regression": 0, "worse, not a gate": 1, "improvement": 2, "within noise": 3}


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
    return f"{text} ({row.band_from})"


def _metric_table(title: str, rows: list[MetricChange], max_rows: int) -> list[str]:
    if not rows:
        return []
    out = ["", f"**{title}** ({len(rows)})", "",
           "| test | metric | better | before | now | change | noise band | verdict |",
           "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows[:max_rows]:
        out.append(
            f"| {md_cell(r.test)} | {md_cell(r.metric)} | {r.better} | "
            f"{format_value(r.base, r.unit)} | {format_value(r.current, r.unit)} | "
            f"{format_change(r)} | {format_band(r)} | {r.verdict} |"
        )
    if len(rows) > max_rows:
        out.append(f"| … {len(rows) - max_rows} more | | | | | | | |")
    return out
