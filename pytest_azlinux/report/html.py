"""One self-contained HTML page per run (``<junit-dir>/index.html``), rendered with Jinja2.

Per image: its verdict and counts, failures and errors first (with the finding and the
host), waived and flaky tests with their reasons, the hardening score, metrics per host pair
with their direction and, given earlier runs, a small inline-SVG trend per metric; then the
image's facts and its hosts, each host listing its tests (links both ways). Skipped tests
are grouped by reason (``report/skips.py``).

Everything is inline (CSS, a few lines of JS, SVG); a Content-Security-Policy forbids the
page any fetch, so opening it never reaches the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ReportError
from .compare import ImageRun, Tolerances, compare_image, load_images, pair_images
from .compare_metrics import MetricChange
from .failures import SHOWN_HOSTS, FailureGroup, group_failures
from .image_diff import ImageDiff, fact_rows, package_rows, summary_line
from .image_source import image_changes
from .model import FAILING, NO_THRESHOLD, PROP_NODE_IMAGE, CaseRecord, Metric, finding_text
from .run_dir import HTML_GENERATOR
from .skips import SkipGroup, group_skips, skips_of
from .stats import median_ci
from .summary import Score, counts_of, hardening_scores
from .verdict import counts_line

TEMPLATE = "report.html.j2"
# Rows of passed/skipped tests listed per image; the JUnit file has them all.
MAX_LISTED = 500
FINDINGS_LISTED = 10  # distinct findings listed per failing check
HOSTS_OPEN = 50  # more hosts: a pool; its host cards are folded and list what needs a look
ATTENTION = FAILING | {"waived"}
SPARK_W, SPARK_H = 120, 28


@dataclass
class TestView:
    anchor: str
    nodeid: str
    name: str
    host: str
    host_anchor: str
    outcome: str
    finding: str
    message: str
    details: str
    waiver: str = ""
    flaky: int = 0
    control: str = ""
    severity: str = ""


@dataclass
class FindingView:
    """One distinct finding of a check: how many hosts, the first few linked, the rest named
    in a folded list (plain names: a link per host would cost the page 70 bytes a host)."""

    outcome: str
    count: int
    text: str
    first: list[tuple[str, str]]  # (host, its card's anchor)
    more: int
    hosts: str  # every host of the finding, comma-separated
    message: str  # the full message of its first case


@dataclass
class FailureGroupView:
    """A check's failures and errors across hosts (``report/failures.py``)."""

    anchor: str
    check: str
    module: str
    where: str  # "failed on 312 of 1000 hosts"
    findings: list[FindingView]
    hidden: int  # distinct findings not listed
    hidden_cases: int


@dataclass
class MetricView:
    test_anchor: str
    test: str  # the test function, e.g. test_tcp_single_stream
    pair: str
    name: str
    value: str
    unit: str
    better: str
    range: str
    threshold: str
    spark: str = ""  # SVG polyline points, "" without history
    history: str = ""
    gated: bool = True  # False: shown for information, compare never calls it a regression
    ci: str = ""  # the median's confidence interval, "[low, high] 94%"
    repetitions: int = 0  # 0: the report kept none (measured once, or an older report)
    samples: str = ""  # the repetitions themselves
    verdict: str = ""  # against the history (azl report html --history), as compare says it
    verdict_note: str = ""


@dataclass
class HostView:
    name: str
    anchor: str
    tests: list[TestView] = field(default_factory=list)
    counts: str = ""
    node_image: str = ""  # an AKS node's image (its label), on its card


@dataclass
class ImageChangesView:
    """What changed in the image since the last earlier run (``--history``)."""

    old: str
    new: str
    summary: str
    facts: list[tuple[str, str, str]]
    packages: list[tuple[str, str, str, str]]
    not_compared: str

    @classmethod
    def of(cls, diff: ImageDiff) -> ImageChangesView:
        return cls(diff.old.label, diff.new.label, summary_line(diff), fact_rows(diff),
                   package_rows(diff), diff.packages_unknown)


@dataclass
class ImageView:
    name: str
    anchor: str
    verdict: str  # failed | passed | none
    counts: str
    facts: list[tuple[str, str]]
    failing: list[FailureGroupView]
    failing_count: int
    waived: list[TestView]
    flaky: list[TestView]
    others: list[TestView]
    others_hidden: int
    scores: list[Score]
    metrics: list[MetricView]
    unjudged: int
    hosts: list[HostView]
    changes: ImageChangesView | None = None
    changes_note: str = ""  # why the changes are not shown (an unreadable image record)
    skip_groups: list[SkipGroup] = field(default_factory=list)  # skips by reason


_FACTS = (("azl.image", "image"), ("azl.os_id", "OS"), ("azl.version", "version"),
          ("azl.variant", "variant"), ("azl.kernels", "kernels"),
          ("azl.node_image_version", "node image"), ("azl.os_sku", "OS SKU"),
          ("azl.target", "target"),
          ("azl.hosts", "hosts"), ("azl.started", "started"),
          ("azl.plugin_version", "plugin version"), ("azl.shards", "shards merged"))


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def anchor(*parts: str) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts)


def write_html(out: Path, paths: Sequence[Path], history: Sequence[Path] = ()) -> Path:
    """Render the reports at ``paths`` (files or run directories) into ``out``."""
    images = load_images(paths)
    if not images:
        raise ReportError(f"{', '.join(map(str, paths))}: no images in these reports")
    return write_images(out, images, history, sources=[str(p) for p in paths])


def write_images(out: Path, images: Mapping[str, ImageRun], history: Sequence[Path] = (),
                 sources: Sequence[str] = ()) -> Path:
    """Render images already in memory (the collector's) into ``out``."""
    text = render_html(images, _history(history), sources=sources)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise ReportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return out


def _history(paths: Sequence[Path]) -> list[tuple[str, dict[str, ImageRun]]]:
    if not paths:
        return []
    from .trend import load_runs

    return [(run.label, run.images) for run in load_runs(paths)]


def render_html(images: Mapping[str, ImageRun],
                history: Sequence[tuple[str, Mapping[str, ImageRun]]] = (),
                sources: Sequence[str] = ()) -> str:
    try:
        from jinja2 import Environment, PackageLoader, select_autoescape
    except ModuleNotFoundError:  # a dependency; say so rather than fail the run's end
        raise ReportError("the HTML report needs Jinja2: pip install 'Jinja2>=3.1'") from None

    env = Environment(loader=PackageLoader("pytest_azlinux.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    views = [_image_view(images[name], _past_values(images[name], images, history),
                         _verdicts(images[name], images, history))
             for name in sorted(images)]
    if history:
        for view in views:
            _changes(view, images[view.name], images, history[-1][1])
    failed = [v for v in views if v.verdict == "failed"]
    return env.get_template(TEMPLATE).render(
        images=views, generator=HTML_GENERATOR, sources=sources,
        history=[label for label, _ in history],
        overall="failed" if failed else "passed",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"), hosts_open=HOSTS_OPEN,
    )


def _past_values(run: ImageRun, images: Mapping[str, ImageRun],
                 history: Sequence[tuple[str, Mapping[str, ImageRun]]]
                 ) -> dict[tuple[str, str], list[float | None]]:
    """(test, metric) -> value in each earlier run (None where absent), oldest first."""
    series: dict[tuple[str, str], list[float | None]] = {}
    for index, (_, past) in enumerate(history):
        pairs, _ = pair_images(past, images)
        base = next((b for b, c in pairs if c.name == run.name and b is not None), None)
        if base is None:
            continue
        for case in base.cases.values():
            for m in case.metrics:
                line = series.setdefault((case.nodeid, m.name), [None] * len(history))
                line[index] = m.value
    return series


def _verdicts(run: ImageRun, images: Mapping[str, ImageRun],
              history: Sequence[tuple[str, Mapping[str, ImageRun]]]
              ) -> dict[tuple[str, str], MetricChange]:
    """(test, metric) -> how ``azl report compare`` judges it against the history (the
    default tolerance; one earlier run: against it, several: the history rule)."""
    earlier = []
    for _, past in history:
        pairs, _ = pair_images(past, images)
        base = next((b for b, c in pairs if c.name == run.name and b is not None), None)
        if base is not None:
            earlier.append(base)
    if not earlier:
        return {}
    result = compare_image(earlier[-1], run, Tolerances(), earlier)
    return {(m.test, m.metric): m for m in result.metrics}


def _changes(view: ImageView, run: ImageRun, images: Mapping[str, ImageRun],
             last: Mapping[str, ImageRun]) -> None:
    """The image's changes since the last earlier run, when both recorded it and it changed."""
    pairs, _ = pair_images(last, images)
    base = next((b for b, c in pairs if c.name == run.name and b is not None), None)
    if base is None:
        return
    diff, view.changes_note = image_changes(base.sources, run.sources)
    view.changes = ImageChangesView.of(diff) if diff is not None else None


def _test_view(image: str, case: CaseRecord) -> TestView:
    host = case.host or ""
    message = case.message
    return TestView(
        anchor=anchor("t", image, case.nodeid), nodeid=case.nodeid, name=case.name,
        host=host, host_anchor=anchor("h", image, host) if host else "",
        outcome=case.outcome,
        finding=finding_text(case.waived_finding if case.outcome == "waived" else message),
        message=message, details=case.details,
        waiver=case.waiver_text() if case.outcome == "waived" else "",
        flaky=case.flaky_attempts, control=case.control or "",
        severity=case.properties.get("azl.control.severity", ""),
    )


def _image_view(run: ImageRun, past: Mapping[tuple[str, str], list[float | None]],
                verdicts: Mapping[tuple[str, str], MetricChange]) -> ImageView:
    cases = sorted(run.cases.values(), key=lambda c: c.nodeid)
    views: dict[str, TestView] = {}
    groups = group_failures(cases)
    # A failing test's row is its check's row: the host cards link there.
    group_anchor = {c.nodeid: anchor("f", run.name, g.module, g.check)
                    for g in groups for c in g.cases}

    def view(case: CaseRecord) -> TestView:  # made only for the tests the page lists
        known = views.get(case.nodeid)
        if known is None:
            known = views[case.nodeid] = _test_view(run.name, case)
            known.anchor = group_anchor.get(case.nodeid, known.anchor)
        return known

    counts = counts_of(cases)
    verdict = "failed" if counts.failed or counts.error else (
        "passed" if counts.passed or counts.waived else "none")
    others = [c for c in cases if c.outcome not in FAILING and c.outcome != "waived"]
    listed = {c.nodeid for c in others[:MAX_LISTED]}
    by_host: dict[str, list[CaseRecord]] = {}
    for case in cases:
        if case.host:
            by_host.setdefault(case.host, []).append(case)
    hosts = []
    # At pool scale a host lists only what needs a look (failing, waived, flaky): its skips
    # are the same on every host and grouped by reason above, and its passed tests are in
    # the JUnit file (each listed would cost the page ~200 bytes a test and host).
    pool = len(by_host) > HOSTS_OPEN
    for host in sorted(by_host):
        own = by_host[host]
        # A host lists its tests that need a look, and the others where the page has them.
        shown = [view(c) for c in own
                 if (c.outcome in ATTENTION or c.flaky_attempts)
                 or (not pool and (c.outcome != "passed" or c.nodeid in listed))]
        node_image = next((v for c in own if (v := c.properties.get(PROP_NODE_IMAGE))), "")
        hosts.append(HostView(host, anchor("h", run.name, host), shown,
                              counts_line(counts_of(own).as_dict()), node_image))
    metrics = [_metric_view(run.name, c, m, past.get((c.nodeid, m.name), []),
                            verdicts.get((c.nodeid, m.name)))
               for c in cases for m in c.metrics]
    return ImageView(
        name=run.name, anchor=anchor("i", run.name), verdict=verdict,
        counts=counts_line({**counts.as_dict(), "flaky": counts.flaky}),
        facts=[(label, run.properties[key]) for key, label in _FACTS
               if run.properties.get(key)],
        failing=[_group_view(run.name, g) for g in groups],
        failing_count=sum(g.count for g in groups),
        waived=[view(c) for c in cases if c.outcome == "waived"],
        flaky=[view(c) for c in cases if c.flaky_attempts],
        others=[view(c) for c in others[:MAX_LISTED]],
        others_hidden=max(0, len(others) - MAX_LISTED),
        scores=hardening_scores(cases),
        metrics=metrics,
        unjudged=sum(1 for m in metrics if m.threshold == "no threshold"),
        hosts=hosts,
        skip_groups=group_skips(skips_of(cases)),
    )


def _group_view(image: str, group: FailureGroup) -> FailureGroupView:
    findings = []
    for found in group.findings[:FINDINGS_LISTED]:
        first = found.cases[0]
        message = first.message + (f"\n\n{first.details}" if first.details else "")
        hosts = found.hosts
        findings.append(FindingView(
            found.outcome, found.count, found.text,
            [(h, anchor("h", image, h)) for h in hosts[:SHOWN_HOSTS]],
            max(0, len(hosts) - SHOWN_HOSTS), ", ".join(hosts), message))
    hidden = group.findings[FINDINGS_LISTED:]
    return FailureGroupView(anchor("f", image, group.module, group.check), group.check,
                            group.module, group.where, findings, len(hidden),
                            sum(f.count for f in hidden))


_PARAM_ID = re.compile(r"\[(.*)\]$")


def _pair(case: CaseRecord) -> str:
    """The host (pair) a test ran on: its parametrization id, e.g. ``azl-1->azl-2``."""
    match = _PARAM_ID.search(case.name)
    return match.group(1) if match else (case.host or "")


def _metric_view(image: str, case: CaseRecord, m: Metric, past: list[float | None],
                 verdict: MetricChange | None) -> MetricView:
    spark = history = ""
    values = [*past, m.value] if past else []
    if sum(v is not None for v in values) >= 2:
        spark = sparkline(values)
        history = " → ".join("n/a" if v is None else f"{v:.3g}" for v in values)
    threshold = ""
    if m.threshold is not None:
        threshold = "no threshold" if m.threshold == NO_THRESHOLD else m.threshold
    return MetricView(
        test_anchor=anchor("t", image, case.nodeid), test=case.name.split("[")[0],
        pair=_pair(case), gated=m.gated,
        name=m.name, value=f"{m.value:.4g}", unit=m.unit, better=m.better,
        range="" if m.low is None or m.high is None else f"{m.low:.4g} to {m.high:.4g}",
        threshold=threshold, spark=spark, history=history,
        ci=_ci(m), repetitions=len(m.samples),
        samples=", ".join(f"{v:.4g}" for v in m.samples),
        verdict=verdict.verdict if verdict else "", verdict_note=verdict.note if verdict else "",
    )


def _ci(m: Metric) -> str:
    if len(m.samples) < 2:
        return ""
    ci = median_ci(m.samples)
    return f"[{ci.low:.4g}, {ci.high:.4g}] {ci.level:.0%}"


def sparkline(values: Sequence[float | None], width: int = SPARK_W,
              height: int = SPARK_H) -> str:
    """SVG polyline points for ``values`` (gaps skipped), scaled into width x height."""
    known = [v for v in values if v is not None]
    low, high = min(known), max(known)
    span = high - low
    step = (width - 4) / max(len(values) - 1, 1)
    points = []
    for i, v in enumerate(values):
        if v is None:
            continue
        # A flat series is drawn across the middle, not along the bottom edge.
        y = height / 2 if not span else height - 3 - (v - low) / span * (height - 6)
        points.append(f"{2 + i * step:.1f},{y:.1f}")
    return " ".join(points)
