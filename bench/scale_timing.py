"""A pytest plugin for bench/bench_cluster_scale.py: where a run's time goes.

Loaded with ``-p scale_timing`` (bench/ on PYTHONPATH). Writes JSON to $AZL_BENCH_TIMING at
the end of the run: phase timestamps (monotonic, seconds since configure), the duration of
the per-image report writing (``ReportCollector.write``), of closing hosts and the run's
cluster cleanup (``AzlSession.close``), of pytest's terminal summary (failure summary
included), and the number of tests the run expected in its reports.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_azlinux.report.collector import ReportCollector
from pytest_azlinux.session import AzlSession

_T0 = time.monotonic()
FIGURES: dict[str, Any] = {}


def _timed(cls: type, method: str, key: str) -> None:
    original = getattr(cls, method)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return original(self, *args, **kwargs)
        finally:
            FIGURES[key] = FIGURES.get(key, 0.0) + time.monotonic() - start
            if cls is ReportCollector:
                FIGURES["expected_cases"] = len(set(self._collected) | set(self._records))

    setattr(cls, method, wrapper)


_timed(ReportCollector, "write", "report_write_s")
_timed(AzlSession, "close", "close_s")
_timed(AzlSession, "prepare", "prepare_s")


def _mark(key: str) -> None:
    FIGURES.setdefault(key, round(time.monotonic() - _T0, 3))


def pytest_collection_finish(session: pytest.Session) -> None:
    _mark("collected_at")


def pytest_runtest_logstart(nodeid: str) -> None:
    _mark("first_test_at")


def pytest_runtest_logfinish(nodeid: str) -> None:
    FIGURES["last_test_at"] = round(time.monotonic() - _T0, 3)


@contextmanager
def _timed(figure: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        FIGURES[figure] = time.monotonic() - start


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary() -> Generator[None, None, None]:
    with _timed("terminal_summary_s"):
        yield


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish() -> Generator[None, None, None]:
    with _timed("sessionfinish_s"):
        yield


def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get("AZL_BENCH_TIMING")
    if path and not hasattr(config, "workerinput"):
        FIGURES["total_s"] = time.monotonic() - _T0
        with open(path, "w") as f:
            json.dump(FIGURES, f, indent=1)
