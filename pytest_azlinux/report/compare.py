"""Read runs of per-image reports back, and compare two runs per image.

A *run* is a directory of per-image JUnit files (what one pytest run writes) or a single
file. Comparing a base run with a current one says, per image, what newly fails, what was
fixed, what still fails, which tests appeared or went away, and which metrics got worse
than a tolerance in their own direction (``metric.<name>.better``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ReportError
from .compare_metrics import MetricChange, judge_history, judge_metric
from .image_diff import ImageDiff
from .image_diff import to_dict as image_diff_dict
from .image_source import image_changes
from .junit import records_of, stream_report
from .model import FAILING, PROP_CONTROL_SEVERITY, CaseRecord, Metric, finding_text
from .stats import ALPHA

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
    """Relative tolerance per metric name (0.05 = 5 %), with a default, and the significance
    level of the rank test."""

    per_metric: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_TOLERANCE
    alpha: float = ALPHA

    def of(self, metric: str) -> float:
        return self.per_metric.get(metric, self.default)


def load_tolerances(path: Path | None, default: float | None = None,
                    alpha: float | None = None) -> Tolerances:
    """Read ``{tolerances: {throughput_gbps: 0.05, default: 0.10}, alpha: 0.01}`` from a YAML
    file; ``default`` and ``alpha`` (the command line's) override the file's."""
    values: dict[str, float] = {}
    level = ALPHA
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
        unknown = sorted(set(raw) - {"tolerances", "alpha"})
        if unknown:
            raise ReportError(f"{path}: unknown field(s) {', '.join(unknown)} "
                              "(expected 'tolerances', 'alpha')")
        if "alpha" in raw:
            level = _alpha(raw["alpha"], f"{path}: alpha")
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
    if alpha is not None:
        level = _alpha(alpha, "--alpha")
    return Tolerances(values, fallback, level)


def _alpha(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ReportError(f"{where}: expected a significance level between 0 and 1 "
                          f"(e.g. 0.01), got {value!r}")
    return float(value)


# -- comparison -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseChange:
    """A test whose outcome is worth listing."""

    test: str
    host: str | None
    base: str  # outcome in the base run, "absent" for a new test
    current: str  # outcome now, "absent" for a removed test
    message: str = ""


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
    # Beyond the tolerance, but too few repetitions to tell: shown, not a gate.
    metric_inconclusive: list[MetricChange] = field(default_factory=list)
    metrics: list[MetricChange] = field(default_factory=list)  # every metric compared
    metrics_compared: int = 0
    waived: tuple[int, int] = (0, 0)  # (base, current)
    flaky: tuple[int, int] = (0, 0)
    history_runs: int = 1  # base runs the metrics were judged against
    # What changed in the image since the base run (both runs recorded it, and it changed).
    image_diff: ImageDiff | None = None
    image_note: str = ""  # why the image changes are not shown (an unreadable record)

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
    history: list[str] = field(default_factory=list)  # every base run, oldest first

    @property
    def regressed(self) -> bool:
        return any(i.regressed for i in self.images)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict, replace

        # The image diff holds both package lists: only its changes go out.
        out = asdict(replace(self, images=[replace(i, image_diff=None) for i in self.images]))
        out["regressed"] = self.regressed
        for image, data in zip(self.images, out["images"], strict=True):
            data["regressed"] = image.regressed
            data["image_diff"] = image_diff_dict(image.image_diff) if image.image_diff else None
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


def compare_runs(base_paths: Path | Sequence[Path], current_path: Path,
                 tolerances: Tolerances) -> Comparison:
    """Compare ``current_path`` with one base run, or with a history of runs (oldest first).

    Outcomes (new failures, fixed, ...) are compared with the last base run; with several,
    each metric is judged against all of them (``judge_history``).
    """
    bases = [base_paths] if isinstance(base_paths, Path) else list(base_paths)
    if not bases:
        raise ReportError("compare: no base run given")
    runs = [load_run(path) for path in bases]
    current = load_run(current_path)
    pairs, only_in_base = pair_images(runs[-1], current)
    # each earlier run's counterpart of each current image (paired the same way)
    earlier = [{c.name: b for b, c in pair_images(run, current)[0]} for run in runs[:-1]]
    images = []
    for base, image in pairs:
        history = [found for found in (e.get(image.name) for e in earlier) if found is not None]
        if base is not None:
            history.append(base)
        compared = compare_image(base, image, tolerances, history)
        if base is not None:
            compared.image_diff, compared.image_note = image_changes(base.sources,
                                                                     image.sources)
        images.append(compared)
    return Comparison(str(bases[-1]), str(current_path), images, only_in_base,
                      [str(p) for p in bases])


def compare_image(base: ImageRun | None, current: ImageRun, tol: Tolerances,
                  history: Sequence[ImageRun] = ()) -> ImageComparison:
    """One image against its base; ``history``: the image in every base run, oldest first
    (the base last); with two or more, metrics are judged against all of them."""
    out = ImageComparison(current.name, base.name if base else None)
    out.history_runs = len(history) or int(base is not None)
    before = base.cases if base else {}
    out.waived = (_count(before.values(), "waived"), _count(current.cases.values(), "waived"))
    out.flaky = (sum(1 for c in before.values() if c.flaky_attempts),
                 sum(1 for c in current.cases.values() if c.flaky_attempts))
    for nodeid, case in sorted(current.cases.items()):
        if len(history) >= 2:
            _compare_history(out, nodeid, case, history, tol)
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
        if len(history) < 2:
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


def _tolerance(tol: Tolerances, name: str, metrics: Iterable[Metric]) -> float:
    """The configured tolerance, or the widest a run declared for this metric."""
    declared = [m.tolerance for m in metrics if m.tolerance is not None]
    return max([tol.of(name), *declared])


def _record(out: ImageComparison, entry: MetricChange) -> None:
    out.metrics_compared += 1
    out.metrics.append(entry)
    if entry.verdict == "regression":
        out.metric_regressions.append(entry)
    elif entry.verdict == "improvement":
        out.metric_improvements.append(entry)
    elif entry.verdict == "inconclusive":
        out.metric_inconclusive.append(entry)


def _compare_metrics(
    out: ImageComparison, test: str, host: str | None,
    before: Iterable[Metric], now: Iterable[Metric], tol: Tolerances,
) -> None:
    old = {m.name: m for m in before}
    for metric in now:
        base = old.get(metric.name)
        if base is None or not (math.isfinite(base.value) and math.isfinite(metric.value)):
            continue
        tolerance = _tolerance(tol, metric.name, (base, metric))
        _record(out, judge_metric(test, host, base, metric, tolerance, tol.alpha))


def _compare_history(out: ImageComparison, test: str, case: CaseRecord,
                     history: Sequence[ImageRun], tol: Tolerances) -> None:
    for metric in case.metrics:
        if not math.isfinite(metric.value):
            continue
        earlier = [m for run in history if (c := run.cases.get(test)) is not None
                   for m in c.metrics if m.name == metric.name and math.isfinite(m.value)]
        if not earlier:
            continue
        tolerance = _tolerance(tol, metric.name, (*earlier, metric))
        if len(earlier) == 1:
            _record(out, judge_metric(test, case.host, earlier[0], metric, tolerance, tol.alpha))
        else:
            _record(out, judge_history(test, case.host, earlier, metric, tolerance, tol.alpha))


# -- Markdown ---------------------------------------------------------------------------------
def md_cell(text: object, limit: int = 200) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, bounded."""
    one = " ".join(str(text).split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def format_value(value: float, unit: str = "") -> str:
    return f"{value:.4g} {unit}".strip()
