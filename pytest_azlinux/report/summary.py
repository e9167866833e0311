"""A Markdown summary of one run: a table of images, then failures and metrics per image.

Meant for a CI run page (``GITHUB_STEP_SUMMARY``) or a pull request comment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .compare import FAILING, ImageRun, format_value, load_run, md_cell
from .model import CaseRecord

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class ImageCounts:
    passed: int
    failed: int
    error: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.error + self.skipped


def counts_of(cases: Iterable[CaseRecord]) -> ImageCounts:
    seen: list[str] = [c.outcome for c in cases]
    return ImageCounts(*(seen.count(o) for o in OUTCOMES))


def summarize_paths(paths: Iterable[Path], max_rows: int = 30) -> str:
    images: dict[str, ImageRun] = {}
    for path in paths:
        for name, run in load_run(path).items():
            known = images.setdefault(name, ImageRun(name, run.properties, {}))
            known.cases.update(run.cases)
            known.sources.extend(run.sources)
    return render_summary(images, max_rows=max_rows)


def render_summary(images: Mapping[str, ImageRun], max_rows: int = 30,
                   title: str = "azl test reports") -> str:
    lines = [f"## {title}", "",
             "| image | result | passed | failed | errors | skipped | hosts | kernels |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for name in sorted(images):
        run = images[name]
        c = counts_of(run.cases.values())
        verdict = "❌ failed" if c.failed or c.error else ("✅ passed" if c.passed else "none run")
        lines.append(
            f"| {md_cell(name)} | {verdict} | {c.passed} | {c.failed} | {c.error} | "
            f"{c.skipped} | {md_cell(run.properties.get('azl.hosts', ''))} | "
            f"{md_cell(run.properties.get('azl.kernels', ''))} |"
        )
    for name in sorted(images):
        lines += _image_section(images[name], max_rows)
    return "\n".join(lines) + "\n"


def _image_section(run: ImageRun, max_rows: int) -> list[str]:
    props = run.properties
    out = ["", f"### {md_cell(run.name)}"]
    facts = [f"{label} `{md_cell(props[key])}`" for key, label in (
        ("azl.target", "target"), ("azl.version", "version"), ("azl.variant", "variant"),
        ("azl.node_image_version", "node image"), ("azl.started", "started"),
    ) if props.get(key)]
    if facts:
        out.append(", ".join(facts))
    failing = [c for c in sorted(run.cases.values(), key=lambda c: c.nodeid)
               if c.outcome in FAILING]
    if failing:
        out += ["", f"**Failures and errors** ({len(failing)})", "",
                "| test | host | outcome | message |", "|---|---|---|---|"]
        for case in failing[:max_rows]:
            out.append(f"| {md_cell(case.nodeid)} | {md_cell(case.host or '')} | "
                       f"{case.outcome} | {md_cell(case.message or '(no message)', 300)} |")
        if len(failing) > max_rows:
            out.append(f"| … {len(failing) - max_rows} more | | | |")
    metrics = [(c, m) for c in sorted(run.cases.values(), key=lambda c: c.nodeid)
               for m in c.metrics]
    if metrics:
        out += ["", f"**Metrics** ({len(metrics)})", "",
                "| test | host | metric | value | better |", "|---|---|---|---:|---|"]
        for case, metric in metrics[:max_rows]:
            out.append(f"| {md_cell(case.nodeid)} | {md_cell(case.host or '')} | "
                       f"{md_cell(metric.name)} | {format_value(metric.value, metric.unit)} | "
                       f"{metric.better} |")
        if len(metrics) > max_rows:
            out.append(f"| … {len(metrics) - max_rows} more | | | | |")
    return out
