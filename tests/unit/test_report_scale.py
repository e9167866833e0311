"""Report work grows linearly with the number of test cases.

Each step is timed on 2 000 and on 20 000 cases in the same process: linear work takes
about 10 times as long, quadratic work 100 times. The assertion is on that ratio (under 15),
never on seconds, and the time is this process's CPU time, so other work on a busy machine
does not count; the best of a few runs keeps one unlucky pause from deciding.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_azlinux.cli import main
from pytest_azlinux.report.collector import ReportCollector
from pytest_azlinux.report.compare import load_run
from pytest_azlinux.report.junit import write_report
from tests.fixtures.reports import synthetic_cases, write_synthetic_run
from tests.fixtures.timing import best_of

SMALL, LARGE = 2_000, 20_000
MAX_RATIO = 15


def ratio(step: Callable[[int], Callable[[], object]]) -> float:
    small = best_of(3, step(SMALL))
    large = best_of(3, step(LARGE))  # the least disturbed of three: one slow run is noise
    print(f"{step.__qualname__}: {large:.3f} s / {small:.3f} s = {large / small:.1f}")
    return large / small


def quiet(*argv: str) -> Callable[[], object]:
    def run() -> int:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return main(list(argv))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Path]]:
    """Per size, a base and a current run (the current one slower on throughput)."""
    root = tmp_path_factory.mktemp("scale")
    out = {}
    for n in (SMALL, LARGE):
        base = root / f"base-{n}"
        cur = root / f"cur-{n}"
        write_synthetic_run(base, n, seed=1, throughput=10.0)
        write_synthetic_run(cur, n, seed=2, throughput=7.0)
        out[n] = (base, cur)
    return out


def test_build_and_write_is_linear(tmp_path: Path) -> None:
    def step(n: int) -> Callable[[], object]:
        cases = synthetic_cases(n)

        def run() -> None:
            write_report(tmp_path / f"{n}.xml", "img", cases, {"azl.image": "img"},
                         timestamp="t", hostname="h")
        return run

    assert ratio(step) < MAX_RATIO


def test_collector_is_linear(tmp_path: Path) -> None:
    """Test reports in, per-image files out, through the collector the plugin registers."""
    def step(n: int) -> Callable[[], object]:
        # each test reports its call, then its teardown (a test without one was cut off)
        reports = [r for i in range(n) for r in (_test_report(i), _teardown(i))]

        def run() -> None:
            collector = ReportCollector(tmp_path / f"c{n}", "0", default_target="pool")
            for report in reports:
                if report.when == "call":
                    collector.collected(report.nodeid, report.nodeid[-11:-1], "pool")
                collector.add(report)
            written = collector.write()
            assert sum(r.counts["passed"] for r in written) == n
        return run

    assert ratio(step) < MAX_RATIO


def _teardown(i: int) -> pytest.TestReport:
    nodeid = _test_report(i).nodeid
    return pytest.TestReport(nodeid, ("suites/image/test_posture.py", 1, "t"), {}, "passed",
                             None, "teardown", [], 0.0)


def _test_report(i: int) -> pytest.TestReport:
    host = f"node-{i // 20:05d}"
    nodeid = f"suites/image/test_posture.py::test_check_{i % 20:02d}[{host}]"
    props = [("azl.host", host), ("azl.target", "pool"), ("azl.image", "img"),
             ("metric.x", 1.0), ("metric.x:unit", "s")]
    return pytest.TestReport(nodeid, ("suites/image/test_posture.py", 1, "t"), {}, "passed",
                             None, "call", [], 0.01, user_properties=props)


def test_read_compare_summary_merge_are_linear(runs: dict[int, tuple[Path, Path]],
                                               tmp_path: Path) -> None:
    steps: dict[str, Callable[[int], Callable[[], object]]] = {
        "read": lambda n: lambda: load_run(runs[n][1]),
        "compare": lambda n: quiet("report", "compare", str(runs[n][0]), str(runs[n][1])),
        "summary": lambda n: quiet("report", "summary", str(runs[n][1])),
        "merge": lambda n: quiet("report", "merge", str(tmp_path / f"m{n}"),
                                 str(runs[n][0]), str(runs[n][1])),
        "html": lambda n: quiet("report", "html", str(runs[n][1]), "--out",
                                str(tmp_path / f"h{n}.html")),
    }
    ratios = {name: ratio(step) for name, step in steps.items()}
    assert all(r < MAX_RATIO for r in ratios.values()), ratios


def test_compare_of_large_runs_finds_what_changed(runs: dict[int, tuple[Path, Path]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The large runs are real input: compare flags the throughput cut on every host."""
    base, cur = runs[LARGE]
    capsys.readouterr()
    assert main(["report", "compare", str(base), str(cur), "--json"]) == 1
    import json

    data = json.loads(capsys.readouterr().out)
    (image,) = data["images"]
    assert len(image["metric_regressions"]) == LARGE // 20  # one throughput test per host
    assert image["metrics_compared"] == LARGE // 20
