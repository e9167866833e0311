"""Waivers end to end: pytest runs (pytester subprocesses) against ``--azl-target local``.

An active, an expired, a stale and an unneeded waiver, a control waiver, and an ERROR that a
waiver never covers, each read back from the terminal and from the per-image JUnit report.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import xml.etree.ElementTree as ET

import pytest

from pytest_azlinux.gate.waivers import Loaded
from pytest_azlinux.lab import Lab
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.runstate import SESSION_KEY
from pytest_azlinux.session import SelectedTarget

RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
TODAY = dt.date.today()
SOON = (TODAY + dt.timedelta(days=30)).isoformat()
PAST = (TODAY - dt.timedelta(days=3)).isoformat()

TESTS = """
import pytest
from pytest_azlinux.errors import ConnectionLost

def test_kernel(azl_host):
    assert azl_host.check_output("echo 5.15") == "6.6", "kernel 5.15, expected 6.6"

def test_old(azl_host):
    assert azl_host.check_output("echo broken") == "fixed", "still broken"

def test_fixed(azl_host):
    assert azl_host.check_output("echo fixed") == "fixed"

def test_infra(azl_host):
    raise ConnectionLost("localhost: connection closed while running: true")

@pytest.mark.azl_control("AZL-SSH-07")
def test_sshd_option(azl_host):
    assert False, "ClientAliveInterval 0"
"""

WAIVERS = f"""
waivers:
  - match: "test_gate.py::test_kernel"
    reason: HWE kernel not in the profile yet
    tracker: https://example.net/OPS-42
    owner: platform-team
    expires: {SOON}
  - match: "test_gate.py::test_old*"
    reason: was fixed in October
    tracker: https://example.net/OPS-7
    expires: {PAST}
  - match: "test_gate.py::test_fixed"
    targets: [local]
    reason: flaky package mirror
    expires: {SOON}
  - match: "test_gate.py::test_gone"
    reason: a test that was removed
    expires: {SOON}
  - match: "test_gate.py::test_infra"
    reason: does not cover errors
    expires: {SOON}
  - match: {{control: AZL-SSH-*}}
    reason: sshd hardening lands in 3.1
    permanent: true
  - match: "*"
    targets: [nightly]
    reason: another target's waiver (never stale here)
    expires: {SOON}
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*RUN, "--azl-target=local", "-v", "-rA",
                                         "--azl-junit-dir=reports", *args, timeout=300)


def report(pytester: pytest.Pytester) -> tuple[dict[str, str], dict[str, ET.Element]]:
    (path,) = (pytester.path / "reports").glob("*.xml")
    suite_props = next(iter(read_cases(path)[0].values()))
    cases = {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}
    return suite_props, cases


def props(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def test_active_expired_stale_unneeded_and_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=TESTS)
    pytester.makefile(".yaml", **{"azl-waivers": WAIVERS})
    result = run(pytester)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out  # the expired one and the ERROR
    assert re.search(r"test_kernel\[localhost\] WAIVED", out)
    assert re.search(r"test_sshd_option\[localhost\] WAIVED", out)
    assert re.search(r"test_old\[localhost\] FAILED", out)
    assert re.search(r"test_fixed\[localhost\] PASSED", out)
    assert re.search(r"test_infra\[localhost\] ERROR", out)
    assert re.search(r"1 failed, 1 passed, 1 error, 2 waived in", out)
    # the summary: expired first, then waived, no longer needed, stale
    section = out[out.index("azl waivers"):out.index("azl verdict")]
    order = [section.index(h) for h in ("EXPIRED, not applied", "waived (2 failing test(s))",
                                         "waivers no longer needed", "stale waivers")]
    assert order == sorted(order), section
    assert f"expired {PAST}: was fixed in October (https://example.net/OPS-7)" in section
    assert "matching: test_gate.py::test_old[localhost]" in section
    assert (f"waived until {SOON}: HWE kernel not in the profile yet "
            "(https://example.net/OPS-42)") in section
    assert "control AZL-SSH-*" in section and "waived permanently: sshd hardening" in section
    assert "azl-waivers.yaml[2] test_gate.py::test_fixed (targets local): flaky package" in section
    assert "azl-waivers.yaml[3] test_gate.py::test_gone: a test that was removed" in section
    assert "another target's waiver" not in section  # for another target: not stale here
    stale_line = section[section.index("stale waivers"):]
    assert "test_infra" not in stale_line  # it matched a test (an ERROR), so not stale

    suite, cases = report(pytester)
    kernel = cases["test_kernel[localhost]"]
    skipped = kernel.find("skipped")
    assert skipped is not None and skipped.get("type") == "azl.waived"
    assert skipped.get("message") == (f"waived until {SOON}: HWE kernel not in the profile "
                                      "yet (https://example.net/OPS-42)")
    assert "kernel 5.15, expected 6.6" in (skipped.text or "")  # the failure it covered
    assert props(kernel) | {"azl.host": "localhost"} == props(kernel)
    assert {k: v for k, v in props(kernel).items() if k.startswith("azl.waiver.")} == {
        "azl.waiver.id": "azl-waivers.yaml[0]", "azl.waiver.state": "waived",
        "azl.waiver.reason": "HWE kernel not in the profile yet",
        "azl.waiver.expires": SOON, "azl.waiver.tracker": "https://example.net/OPS-42",
        "azl.waiver.owner": "platform-team",
    }
    control = cases["test_sshd_option[localhost]"]
    assert props(control)["azl.control.id"] == "AZL-SSH-07"
    assert "azl.waiver.expires" not in props(control)  # permanent
    old = cases["test_old[localhost]"]
    assert old.find("failure") is not None
    assert props(old)["azl.waiver.state"] == "expired"
    fixed = cases["test_fixed[localhost]"]
    assert fixed.find("skipped") is None and fixed.find("failure") is None
    assert props(fixed)["azl.waiver.state"] == "unneeded"
    infra = cases["test_infra[localhost]"]
    assert infra.find("error") is not None and props(infra)["azl.waiver.state"] == "error"
    assert '"match": "test_gate.py::test_gone"' in suite["azl.waivers.stale"]
    assert '"expires": "' + PAST in suite["azl.waivers.expired"]


def test_a_run_whose_failures_are_all_waived_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=TESTS)
    pytester.makefile(".yaml", **{"azl-waivers": WAIVERS})
    result = run(pytester, "-k", "kernel or sshd_option or fixed")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 passed, 2 deselected, 2 waived in*"])


def test_waivers_under_xdist(pytester: pytest.Pytester) -> None:
    """Judged on the workers, summarised on the controller from the reports alone."""
    pytester.makepyfile(test_gate=TESTS)
    pytester.makefile(".yaml", **{"azl-waivers": WAIVERS})
    result = run(pytester, "-n", "2")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert re.search(r"1 failed, 1 passed, 1 error, 2 waived in", out)
    assert "waivers no longer needed" in out and "stale waivers" in out
    _, cases = report(pytester)
    skipped = cases["test_kernel[localhost]"].find("skipped")
    assert skipped is not None and skipped.get("type") == "azl.waived"


XFAIL_TESTS = """
import pytest

@pytest.mark.xfail(reason="known")
def test_xfail(azl_host):
    assert False, "broken"

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail_strict(azl_host):
    assert False, "broken"

@pytest.mark.xfail(reason="known")
def test_xpass(azl_host):
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_xpass_strict(azl_host):
    pass
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_waiver_matching_xfail_tests(pytester: pytest.Pytester,
                                       workers: tuple[str, ...]) -> None:
    """An xfail stays an xfail (the test's own expectation), a non-strict xpass a pass the
    waiver was not needed for; a strict xpass is a failure, which the waiver covers."""
    pytester.makepyfile(test_xf=XFAIL_TESTS)
    pytester.makefile(".yaml", **{"azl-waivers": (
        "waivers:\n  - match: 'test_xf.py::*'\n    reason: known\n    permanent: true\n")})
    result = run(pytester, *workers)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out
    assert "INTERNALERROR" not in out
    assert re.search(r"2 xfailed, 1 xpassed, 1 waived in", out), out
    _, cases = report(pytester)
    outcomes = {name: [(e.tag, e.get("type"), e.get("message")) for e in case
                       if e.tag != "properties"] for name, case in cases.items()}
    assert outcomes == {
        "test_xfail[localhost]": [("skipped", None, "xfail: known")],
        "test_xfail_strict[localhost]": [("skipped", None, "xfail: known")],
        "test_xpass[localhost]": [],
        "test_xpass_strict[localhost]": [("skipped", "azl.waived", "waived permanently: known")],
    }
    states = {name: props(case)["azl.waiver.state"] for name, case in cases.items()}
    assert states == {"test_xfail[localhost]": "skipped", "test_xfail_strict[localhost]": "skipped",
                      "test_xpass[localhost]": "unneeded", "test_xpass_strict[localhost]": "waived"}


def test_option_and_ini_name_the_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=TESTS)
    elsewhere = pytester.mkdir("policy") / "accepted.yaml"
    elsewhere.write_text(WAIVERS)
    by_option = run(pytester, f"--azl-waivers={elsewhere}", "-k", "kernel")
    assert by_option.ret == 0 and "WAIVED" in by_option.stdout.str()
    pytester.makeini("[pytest]\nazl_waivers_file = policy/accepted.yaml\n")
    by_ini = run(pytester, "-k", "kernel")
    assert by_ini.ret == 0 and "WAIVED" in by_ini.stdout.str()
    without = pytester.runpytest_subprocess(*RUN, "--azl-target=local", "-k", "kernel",
                                            "-c", "/dev/null", f"--rootdir={pytester.path}")
    assert without.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(("text", "expected"), [
    ("waivers:\n  - match: a\n    reason: r\n",
     "ERROR: {path}: waiver [0] (a): field 'expires': required (an ISO date), or permanent: "
     "true for a limit that stays"),
    ("waivers:\n  - match: a\n    reason: r\n    expires: 2999-01-01\n",
     "ERROR: {path}: waiver [0] (a): field 'expires': 2999-01-01 is "
     f"{(dt.date(2999, 1, 1) - TODAY).days} days away, more than max_days 90; shorten it, or "
     "set permanent: true (with its reason)"),
])
def test_a_bad_waivers_file_is_a_usage_error(pytester: pytest.Pytester, text: str,
                                             expected: str) -> None:
    pytester.makepyfile(test_gate="def test_a(azl_host):\n    open('ran', 'w').close()\n")
    path = pytester.makefile(".yaml", **{"azl-waivers": text})
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [ln for ln in result.errlines if ln.strip()] == [expected.format(path=path)]
    assert not (pytester.path / "ran").exists()


def test_a_missing_named_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate="def test_a(azl_host):\n    pass\n")
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=local",
                                           "--azl-waivers=nowhere.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --azl-waivers: nowhere.yaml: no such file"])


def test_waivers_beside_the_targets_file(pytester: pytest.Pytester) -> None:
    conf = pytester.mkdir("conf")
    (conf / "azl-targets.yaml").write_text("targets:\n  here:\n    kind: local\n")
    (conf / "azl-waivers.yaml").write_text(
        f"waivers:\n  - match: '*test_kernel*'\n    reason: beside\n    expires: {SOON}\n")
    pytester.makepyfile(test_gate=TESTS)
    result = pytester.runpytest_subprocess(
        *RUN, "--azl-target=here", f"--azl-targets-file={conf / 'azl-targets.yaml'}",
        "-k", "kernel", "-v")
    assert result.ret == 0, result.stdout.str()
    assert re.search(r"test_kernel\[localhost\] WAIVED", result.stdout.str())


def test_lab_kind_waivers_are_loaded_for_lab_targets_only(pytester: pytest.Pytester) -> None:
    """The lab's own file joins the run's waivers once its target is resolved (at session
    start: the context of a ``kind: lab`` target is its Lab), for lab targets only. No lab is
    started here: the resolution is stood in for by the selected targets it would give."""
    pytester.makefile(".yaml", **{"azl-targets": (
        "targets:\n  mylab:\n    kind: lab\n    lab: gwt\n  here:\n    kind: local\n")})

    def waivers_of(target: str) -> list[Loaded]:
        sigterm = signal.getsignal(signal.SIGTERM)  # the plugin takes SIGTERM over
        try:
            config = pytester.parseconfigure(f"--azl-target={target}", "-p", "no:cacheprovider")
            gate = config.pluginmanager.get_plugin("azl-gate")
            azl = config.stash[SESSION_KEY]
            assert list(gate.waivers.waivers) == []  # nothing before the target is resolved
            context = Lab("gwt", state_dir=pytester.path / "gwt") if target == "mylab" else None
            config_of = azl.targets_file.get(target)
            azl.selected = [SelectedTarget(target, config_of, (), context=context)]
            gate.pytest_sessionstart(session=None)
            ledger = config.pluginmanager.get_plugin("azl-gate-ledger")
            assert ledger.waivers is gate.waivers  # the summary sees the same waivers
            return list(gate.waivers.waivers)
        finally:
            signal.signal(signal.SIGTERM, sigterm)

    lab = waivers_of("mylab")
    assert len(lab) >= 8
    assert all(w.waiver.targets == ["mylab"] for w in lab)
    assert all(w.source.startswith("lab:waivers.yaml[") for w in lab)
    assert waivers_of("here") == []


def test_waivers_for_other_images_and_hosts_are_not_stale(pytester: pytest.Pytester) -> None:
    """Only a waiver that could have matched a test of this run is stale."""
    pytester.makepyfile(test_gate="def test_kernel(azl_host):\n    pass\n")
    pytester.makefile(".yaml", **{"azl-waivers": f"""
waivers:
  - match: "test_gate.py::test_gone"
    images: ["*-osguard"]
    reason: for the OS Guard run
    expires: {SOON}
  - match: "test_gate.py::test_gone"
    hosts: ["aks-canary-*"]
    reason: for the canary pool
    expires: {SOON}
  - match: "test_gate.py::test_gone"
    images: ["*"]
    hosts: ["local*"]
    reason: a test that was removed
    expires: {SOON}
"""})
    result = run(pytester)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out
    section = out[out.index("azl waivers"):out.index("azl verdict")]
    assert "stale waivers" in section and "a test that was removed" in section
    assert "OS Guard" not in section and "canary" not in section
