#!/usr/bin/env python3
"""Report tools at pool scale: 20 000 test cases in one per-image report (issue: each < 3 s).

Measures, on synthetic cases shaped like a real run (1 000 hosts x 20 checks; failures,
errors, waived, flaky, controls, a throughput metric with its range per host):
  - build+write: the per-image report from 20 000 records (what the collector does);
  - collector: 20 000 pytest test reports in, the report and index.html out;
  - merge: 4 shards of 5 000 cases into one report of 20 000;
  - compare / summary / html: the ``azl report`` commands on 20 000-case files.
Wall and CPU time (of the fastest of --runs) and the machine's load average are printed.

With ``--page`` (needs Debian's ``chromium``, for the bench only), the HTML page of the
synthetic run and of each ``--real`` run directory (e.g. the reports of a 1000-node
bench/bench_cluster_scale.py run, ``--keep-reports``) is measured as a reader gets it: its
size, the Markdown summary's size, and its load in headless Chromium (bench/html_load.py:
DOMContentLoaded, load, elements, one keystroke in the filter box; best of --runs cold
loads). Run it from an older checkout too to compare before/after.

    PYTHONPATH=. python3 bench/bench_reports.py [--cases 20000] [--runs 3] [--page]
        [--real DIR ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from pytest_azlinux.cli import main as azl
from pytest_azlinux.report.collector import ReportCollector
from pytest_azlinux.report.compare import load_images
from pytest_azlinux.report.junit import write_report
from tests.fixtures.reports import synthetic_cases, write_synthetic_run

GOAL_S = 3.0


def best(runs: int, step: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest run: CPU time says what a busy machine hides."""
    times = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times)


def quiet(*argv: str) -> Callable[[], object]:
    def run() -> int:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return azl(list(argv))
    return run


def test_reports(n: int) -> list[pytest.TestReport]:
    out = []
    for case in synthetic_cases(n):
        props: list[tuple[str, object]] = [("azl.host", case.host or ""), ("azl.target", "pool"),
                                           ("azl.image", case.image or "")]
        props += list(case.properties.items())
        for m in case.metrics:
            props += [(f"metric.{m.name}", m.value), (f"metric.{m.name}:unit", m.unit),
                      (f"metric.{m.name}:low", m.low or 0.0),
                      (f"metric.{m.name}:high", m.high or 0.0)]
        outcome: Literal["passed", "failed"] = (
            "failed" if case.outcome in ("failed", "error") else "passed")
        longrepr = case.message if outcome == "failed" else None
        out.append(pytest.TestReport(case.nodeid, ("suites/image/test_posture.py", 1, "t"), {},
                                     outcome, longrepr, "call", [], case.time,
                                     user_properties=props))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page", action="store_true",
                        help="measure the HTML page's size and load in headless Chromium")
    parser.add_argument("--real", type=Path, nargs="*", default=[],
                        help="run directories (per-image JUnit) whose pages to measure too")
    parser.add_argument("--only-page", action="store_true",
                        help="skip the report tools' timings")
    args = parser.parse_args()
    if args.only_page:
        args.page = True
    n = args.cases
    figures: dict[str, tuple[float, float]] = {}
    pages: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.page:
            pages = page_figures(root, n, args.real, args.runs)
        if args.only_page:
            print_pages(pages)
            return 0
        cases = synthetic_cases(n)
        figures["build+write"] = best(args.runs, lambda: write_report(
            root / "bw" / "img.xml", "img", cases, {"azl.image": "img"}, timestamp="t",
            hostname="pool"))
        reports = test_reports(n)

        def collect() -> None:
            collector = ReportCollector(root / "collected", "bench", default_target="pool")
            for report in reports:
                collector.add(report)
            collector.write()
        figures["collector (+index.html)"] = best(args.runs, collect)
        base, cur = root / "base", root / "cur"
        write_synthetic_run(base, n, seed=1, throughput=10.0)
        write_synthetic_run(cur, n, seed=2, throughput=7.0)
        shards = []
        per_shard = n // 4
        for i in range(4):  # one image, distinct hosts per shard (as --azl-shard splits)
            shard = root / f"shard-{i}"
            write_synthetic_run(shard, per_shard, seed=i, host_prefix=f"s{i}-node")
            shards.append(str(shard))
        figures["merge (4 x n/4)"] = best(args.runs, quiet("report", "merge",
                                                          str(root / "merged"), *shards))
        figures["compare"] = best(args.runs, quiet("report", "compare", str(base), str(cur)))
        figures["summary"] = best(args.runs, quiet("report", "summary", str(cur)))
        figures["html --history"] = best(args.runs, quiet(
            "report", "html", str(cur), "--history", str(base), "--out", str(root / "i.html")))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{n} cases, best of {args.runs}, load average {load} (on {os.cpu_count()} cpus)")
    print(f"  {'step':24} {'wall':>8} {'CPU':>8}")
    for name, (wall, cpu) in figures.items():
        mark = "ok" if wall < GOAL_S else f"over {GOAL_S:g} s (wall)"
        print(f"  {name:24} {wall:6.2f} s {cpu:6.2f} s  {mark}")
    if args.page:
        print_pages(pages)
    return 0


def page_figures(root: Path, n: int, real: list[Path], runs: int) -> list[str]:
    """One line per page: its size, the summary's size, its load in Chromium."""
    from html_load import best_load  # bench/ is the script's directory

    write_synthetic_run(root / "synthetic", n, seed=3)
    lines = []
    for label, run in [(f"synthetic {n}", root / "synthetic"),
                       *((str(p), p) for p in real)]:
        page = root / f"page-{len(lines)}.html"
        quiet("report", "html", str(run), "--out", str(page))()
        summary = root / f"summary-{len(lines)}.md"
        quiet("report", "summary", str(run), "--out", str(summary))()
        cases = sum(len(r.cases) for r in load_images([run]).values())
        got = best_load(page, runs)
        lines.append(
            f"  {label}: {cases} cases; page {page.stat().st_size / 1e6:.2f} MB, "
            f"summary {summary.stat().st_size / 1e3:.0f} KB; Chromium (best of {runs}): "
            f"DOMContentLoaded {got.dom_content_loaded_ms:.0f} ms, load {got.load_ms:.0f} ms, "
            f"{got.elements} elements, a filter keystroke {got.filter_ms:.0f} ms; "
            f"load average {os.getloadavg()[0]:.1f}")
    return lines


def print_pages(lines: list[str]) -> None:
    print("HTML page and summary as a reader gets them:")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
