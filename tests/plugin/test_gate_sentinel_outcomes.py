"""A test has one outcome: sentinel findings after its own failure are its evidence.

This machine runs no systemd, so the units sentinel's evidence is stood in for: the run is
in a private mount namespace whose ``/run/systemd/system`` exists (what the sentinel takes
for "systemd is PID 1"), and a stand-in ``systemctl`` (first on PATH, named as such) prints
the real ``systemctl list-units --state=failed`` output recorded on a lab VM after a
transient unit failed (tests/data/sentinels/vm_units_failed.txt, see its README) once the
test's command has "failed the unit". Everything else is real: pytest, xdist, the gate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_azlinux.report.junit import read_cases

RECORDED = Path(__file__).parents[1] / "data" / "sentinels" / "vm_units_failed.txt"
UNIT = "azl-gate-fail.service"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                       reason="needs root and unshare (a private mount namespace)"),
]

STAND_IN_SYSTEMCTL = """#!/bin/sh
# stand-in for systemctl (no systemd on this machine): the recorded failed-units output,
# once the unit has failed
[ -e "{state}/failed" ] && cat "{recorded}"
exit 0
"""

FAIL_UNIT = """#!/bin/sh
# stand-in for `systemd-run --wait --unit=azl-gate-fail sh -c 'exit 3'`: the unit fails
touch "{state}/failed"
echo "Job for azl-gate-fail.service failed" >&2
exit 3
"""


def run_in_namespace(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = pytester.path / "bin"
    state = pytester.path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("systemctl", STAND_IN_SYSTEMCTL), ("azl-fail-unit", FAIL_UNIT)):
        script = bin_dir / name
        script.write_text(text.format(state=state, recorded=RECORDED))
        script.chmod(0o755)
    setup = "mount -t tmpfs azl-test /run/systemd && mkdir /run/systemd/system && exec \"$@\""
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, "sh",
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--azl-target=local", "--azl-junit-dir=reports", "--junit-xml=pytest.xml",
         "-v", "-rA", *args],
        cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_failed_unit_after_the_test_failed_is_one_failure(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_units="""
        def test_a_quiet(azl_host):
            pass

        def test_b_unit_fails(azl_host):
            azl_host.check_output("azl-fail-unit")

        def test_c_quiet(azl_host):
            pass
    """)
    done = run_in_namespace(pytester, *workers)
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "units sentinel off" not in out, out  # the sentinel was on
    name = "test_units.py::test_b_unit_fails[localhost]"
    # once, FAILED, with its own cause; nothing counted twice
    assert len(re.findall(rf"^FAILED {re.escape(name)}", out, re.M)) == 1, out
    assert re.search(r"=+ 1 failed, 2 passed in ", out), out
    # the sentinel's finding is still shown, as the failed test's evidence
    summary = out[out.index("azl sentinels"):]
    assert f"{name} (failed already; also seen on its hosts):" in summary
    assert UNIT in summary
    # the per-image report: one failure, its own message, the unit in its text
    (path,) = (pytester.path / "reports").glob("*.xml")
    cases = {c.name: c for c in read_cases(path)[1]}
    case = cases["test_b_unit_fails[localhost]"]
    assert case.outcome == "failed" and "CommandFailed" in case.message, case.message
    assert UNIT in case.details
    assert {n: c.outcome for n, c in cases.items() if n != case.name} == {
        "test_a_quiet[localhost]": "passed", "test_c_quiet[localhost]": "passed"}
    # pytest's own file: one test case, one failure carrying the unit
    root = ET.parse(pytester.path / "pytest.xml").getroot()
    named = [c for c in root.iter("testcase") if c.get("name") == "test_b_unit_fails[localhost]"]
    assert len(named) == 1
    (failure,) = named[0].iter("failure")
    assert UNIT in (failure.text or "")
    assert [e for e in named[0] if e.tag == "error"] == []


def test_a_unit_failing_beside_a_passing_test_still_fails_it(pytester: pytest.Pytester) -> None:
    """The finding is the outcome when the test itself passed (the unchanged rule): FAILED,
    a ``<failure>`` in the per-image report and in pytest's ``--junit-xml`` too (there it
    was an ``<error>``: pytest writes any failed teardown so)."""
    pytester.makepyfile(test_units="""
        def test_unit_fails_quietly(azl_host):
            azl_host.run("azl-fail-unit")
    """)
    done = run_in_namespace(pytester)
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert "SentinelFindings" in out and "units: 1 unit(s) failed" in out
    (path,) = (pytester.path / "reports").glob("*.xml")
    (case,) = read_cases(path)[1]
    assert case.outcome == "failed" and UNIT in case.details
    root = ET.parse(pytester.path / "pytest.xml").getroot()
    (testcase,) = root.iter("testcase")
    assert [e.tag for e in testcase if e.tag in ("failure", "error")] == ["failure"]
    (failure,) = testcase.iter("failure")
    assert UNIT in (failure.text or "")
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "1", "0")
