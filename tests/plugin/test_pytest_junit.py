"""pytest's own ``--junit-xml`` says what the terminal and the per-image reports say.

Real runs (pytester subprocesses) against this machine (``--azl-target local``) and hosts on
127.0.0.1 that refuse or never speak SSH; the written XML is parsed back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_azlinux.report.junit import read_cases

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly", "--junit-xml=pytest.xml",
       "--azl-junit-dir=reports")
WORKERS = pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])


def pytest_outcomes(path: Path) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """The suite's counts, and per test case its outcome elements (tag, message)."""
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    counts = {k: suite.get(k, "") for k in ("tests", "errors", "failures", "skipped")}
    cases = {case.get("name", ""): [(e.tag, e.get("message", "")) for e in case
                                    if e.tag in ("failure", "error", "skipped")]
             for case in root.iter("testcase")}
    return counts, cases


def azl_outcomes(pytester: pytest.Pytester) -> dict[str, str]:
    return {c.name: c.outcome for path in (pytester.path / "reports").glob("*.xml")
            for c in read_cases(path)[1]}


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connect: refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@WORKERS
def test_infrastructure_errors_are_errors(pytester: pytest.Pytester, closed_port: int,
                                          workers: tuple[str, ...]) -> None:
    """A command timing out inside a test, a lost connection raised inside a test and an
    unreachable host are ``<error>``; a finding is a ``<failure>``; the counts agree."""
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  here:\n    kind: local\n"
        "  dead:\n    kind: ssh\n    defaults: {connect_timeout: 2, reconnect_within: 0, user: x}\n"
        f"    hosts:\n      - {{name: d1, address: 127.0.0.1, port: {closed_port}}}\n")})
    pytester.makepyfile(test_x="""
        import pytest
        from pytest_azlinux.errors import ConnectionLost

        def test_timeout(azl_host):
            azl_host.run("sleep 5", timeout=0.3)

        def test_lost(azl_host):
            raise ConnectionLost(f"{azl_host.name}: connection closed while running: true")

        def test_finding(azl_host):
            assert azl_host.check_output("echo 5.15") == "6.6"
    """)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=here,dead", "-rA", *workers)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    counts, cases = pytest_outcomes(pytester.path / "pytest.xml")
    tags = {name: [tag for tag, _ in elements] for name, elements in cases.items()}
    assert tags == {
        "test_timeout[localhost]": ["error"], "test_lost[localhost]": ["error"],
        "test_finding[localhost]": ["failure"],
        "test_timeout[d1]": ["error"], "test_lost[d1]": ["error"], "test_finding[d1]": ["error"],
    }
    assert counts == {"tests": "6", "errors": "5", "failures": "1", "skipped": "0"}
    assert cases["test_timeout[localhost]"][0][1].startswith("CommandTimeout: localhost: ")
    # the terminal and the per-image reports say the same
    for name, elements in cases.items():
        word = "FAILED" if elements[0][0] == "failure" else "ERROR"
        assert f"{word} test_x.py::{name}" in out, out
    azl = {name: ("failure" if outcome == "failed" else outcome)
           for name, outcome in azl_outcomes(pytester).items()}
    assert azl == {name: elements[0][0] for name, elements in cases.items()}


@pytest.fixture
def mute_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts and never speaks SSH (a connect waits its timeout)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield int(silent.getsockname()[1])


def _interrupt(pytester: pytest.Pytester, args: list[str], ready: str, sig: int) -> str:
    """Run pytest, send ``sig`` once ``ready`` is in its output or a file of that name
    exists (and a moment later); the output."""
    out_path = pytester.path / "out.txt"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *RUN, *args],
                                cwd=pytester.path, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        deadline = time.monotonic() + 120
        while ready not in out_path.read_text() and not (pytester.path / ready).exists():
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(sig)
        assert proc.wait(timeout=90) == pytest.ExitCode.INTERRUPTED, out_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    return out_path.read_text()


@WORKERS
def test_interrupted_host_preparation_leaves_every_test_an_error(
    pytester: pytest.Pytester, mute_port: int, workers: tuple[str, ...]
) -> None:
    """Ctrl-C while the hosts are being connected, before any test reported: the file holds
    every collected test, each an ``<error>`` saying it was not run (it used to hold no test
    case, or nameless ``<testcase/>`` elements under xdist)."""
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  mute:\n    kind: ssh\n    defaults: {connect_timeout: 10, user: x}\n"
        f"    hosts:\n      - {{name: m1, address: 127.0.0.1, port: {mute_port}}}\n"
        f"      - {{name: m2, address: 127.0.0.1, port: {mute_port}}}\n")})
    pytester.makepyfile(test_x="\n".join(f"def test_{i}(azl_host): pass" for i in range(3)))
    ready = "[6 items]" if workers else "collected 6 items"
    out = _interrupt(pytester, ["--azl-target=mute", *workers], ready, signal.SIGINT)
    counts, cases = pytest_outcomes(pytester.path / "pytest.xml")
    expected = {f"test_{i}[{h}]" for i in range(3) for h in ("m1", "m2")}
    assert set(cases) == expected, out
    assert all(elements == [("error", "not run: the run was interrupted")]
               for elements in cases.values()), cases
    assert counts == {"tests": "6", "errors": "6", "failures": "0", "skipped": "0"}
    assert azl_outcomes(pytester) == dict.fromkeys(expected, "error")


@WORKERS
def test_a_test_cut_off_while_running_is_an_error_with_its_name(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    """SIGTERM (how CI cancels a job) during a test: finished tests keep their outcome, the
    running one and those never reached are named ``<error>`` elements."""
    pytester.makepyfile(test_x=f"""
        import time
        def test_1(azl_host): pass
        def test_2_slow(azl_host):
            open({str(pytester.path / "started")!r}, "w").close()
            time.sleep(120)
        def test_3(azl_host): pass
    """)
    out = _interrupt(pytester, ["--azl-target=local", *workers], "started", signal.SIGTERM)
    counts, cases = pytest_outcomes(pytester.path / "pytest.xml")
    assert cases == {
        "test_1[localhost]": [],
        "test_2_slow[localhost]": [("error", "interrupted while running: the run was interrupted")],
        "test_3[localhost]": [("error", "not run: the run was interrupted")],
    }, out
    assert counts == {"tests": "3", "errors": "2", "failures": "0", "skipped": "0"}
    assert azl_outcomes(pytester) == {"test_1[localhost]": "passed",
                                      "test_2_slow[localhost]": "error",
                                      "test_3[localhost]": "error"}
