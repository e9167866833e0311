"""Reruns for infrastructure errors only: pytest runs (pytester subprocesses) against
``--azl-target local``. The tests raise the plugin's own infrastructure errors the way the
transports do (the real thing, a host whose sshd goes away, is in
tests/integration/test_gate_lab.py); each counts its attempts in a file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")

TESTS = """
from pathlib import Path

import pytest
from pytest_azlinux.errors import (
    CommandTimeout, ConnectionLost, HostKeyError, HostUnreachable,
)

def attempt(name):
    path = Path(__file__).parent / f"attempts-{name}"
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

@pytest.fixture(scope="module")
def module_resource():
    Path(__file__).parent.joinpath("module-setups").open("a").write("x")
    return "ok"

def test_flaky(azl_host, module_resource):
    if attempt("flaky") == 1:
        raise ConnectionLost("localhost: connection closed while running: true")
    assert azl_host.check_output("echo ok") == module_resource

def test_finding(azl_host):
    attempt("finding")
    assert False, "a real finding"

def test_timeout(azl_host):
    attempt("timeout")
    raise CommandTimeout("localhost", "sleep 99", 1.0)

def test_z_down(azl_host):
    attempt("down")
    raise HostUnreachable("localhost", "127.0.0.1", "no route to host")

def test_zz_after_the_host_went_down(azl_host):
    attempt("after")

def test_zzz_host_key(azl_host):  # run alone: a bad host key also marks the host down
    attempt("host_key")
    raise HostKeyError("localhost", "127.0.0.1", "host key changed")
"""


def statuses(out: str) -> list[tuple[str, str]]:
    """(test name, PASSED/RERUN/...) per verbose line, with or without xdist's layout."""
    plain = re.compile(r"^\S+::(?P<name>\S+) (?P<status>[A-Z]+)\b")
    xdist = re.compile(r"^\[gw\d+\] \[ *\d+%\] (?P<status>[A-Z]+) \S+::(?P<name>\S+)")
    found = []
    for line in out.splitlines():
        m = plain.match(line) or xdist.match(line)
        if m:
            found.append((m["name"], m["status"]))
    return found


def attempts(pytester: pytest.Pytester, name: str) -> int:
    path = pytester.path / f"attempts-{name}"
    return int(path.read_text()) if path.exists() else 0


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*RUN, "--azl-target=here", "-v",
                                         "--azl-junit-dir=reports", *args, timeout=300)


def targets(pytester: pytest.Pytester, suites: str = "") -> None:
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  here:\n    kind: local\n" + suites)})


def cases(pytester: pytest.Pytester) -> dict[str, ET.Element]:
    (path,) = (pytester.path / "reports").glob("*.xml")
    return {c.get("name", ""): c for c in ET.parse(path).getroot().iter("testcase")}


def props(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_only_rerunnable_infrastructure_errors_are_rerun(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_r=TESTS)
    targets(pytester)
    result = run(pytester, "--azl-reruns=2", "-k", "not host_key", *xdist)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert attempts(pytester, "flaky") == 2  # a lost connection: run again, then passed
    assert attempts(pytester, "finding") == 1  # a FAIL is never rerun
    assert attempts(pytester, "timeout") == 1  # timeouts only where the target allows it
    assert attempts(pytester, "down") == 3  # unreachable: the first try and 2 reruns
    # the host was given up on: a later test reuses the error and is not rerun
    assert attempts(pytester, "after") == 0
    seen = statuses(out)
    assert seen.count(("test_zz_after_the_host_went_down[localhost]", "ERROR")) == 1
    assert seen.count(("test_flaky[localhost]", "RERUN")) == 1
    assert seen.count(("test_flaky[localhost]", "PASSED")) == 1
    assert seen.count(("test_z_down[localhost]", "RERUN")) == 2
    assert ("test_finding[localhost]", "RERUN") not in seen
    assert (pytester.path / "module-setups").read_text() == "x"  # module fixture kept
    section = out[out.index("azl flaky tests"):]
    assert ("test_r.py::test_flaky[localhost]: passed on attempt 2 after ConnectionLost: "
            "localhost: connection closed while running: true") in section
    assert re.search(r"1 failed, 1 passed, (1 deselected, )?3 errors, 3 rerun in", out), out
    found = cases(pytester)
    flaky = found["test_flaky[localhost]"]
    assert props(flaky)["azl.flaky"] == "2"
    assert flaky.find("failure") is None and flaky.find("error") is None
    assert found["test_finding[localhost]"].find("failure") is not None
    assert "azl.flaky" not in props(found["test_finding[localhost]"])
    down = found["test_z_down[localhost]"]
    assert down.find("error") is not None and "azl.flaky" not in props(down)
    assert len(found) == 5  # one test case per test, whatever the attempts


def test_a_bad_host_key_is_not_rerun(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r=TESTS)
    targets(pytester)
    result = run(pytester, "--azl-reruns=2", "-k", "host_key")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert attempts(pytester, "host_key") == 1  # an unknown or changed key does not fix itself


def test_timeouts_are_rerun_where_the_target_allows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r=TESTS)
    targets(pytester, "    suites:\n      reruns: {timeouts: true}\n")
    result = run(pytester, "--azl-reruns=1", "-k", "timeout")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert attempts(pytester, "timeout") == 2


def test_no_reruns_by_default_and_the_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r=TESTS)
    targets(pytester)
    result = run(pytester, "-k", "flaky")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert attempts(pytester, "flaky") == 1
    pytester.makeini("[pytest]\nazl_reruns = 1\n")
    again = run(pytester, "-k", "flaky")
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    assert attempts(pytester, "flaky") == 2  # the count file survives: it passes at once


def test_a_bad_reruns_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_r="def test_a(azl_host):\n    pass\n")
    targets(pytester)
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=here", "--azl-reruns=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: azl_reruns: must be 0 or more, got -1"])
