#!/usr/bin/env python3
"""Report tools at pool scale: 20 000 test cases in one per-image report (issue: each < 3 s).

Measures, on synthetic cases shaped like a real run (1 000 hosts x 20 checks; failures,
errors, waived, flaky, controls, a throughput metric with its range per host):
  - build+write: the per-image report from 20 000 records (what the collector does);
  - collector: 20 000 pytest test reports in, the report and index.html out;
  - merge: 4 shards of 5 000 cases into one report of 20 000;
  - compare / summary / html: the ``azl report`` commands on 20 000-case files.
Wall and CPU time (of the fastest of --runs) and the machine's load average are printed.

    PYTHONPATH=. python3 bench/bench_reports.py [--cases 20000] [--runs 3]
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
    args = parser.parse_args()
    n = args.cases
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
