"""The gate on real lab hosts: the lab's own waivers on the shipped suites; an active, an
expired, a stale and an unneeded waiver in the terminal and the per-image reports; a host
whose sshd is down for the first attempt of a test and back for the second.

The lab is one of this module's own (three namespaced hosts, one per default variant),
because one test stops a host's sshd.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_azlinux.lab import Lab
from tests.fixtures.lab import lab_targets_with, make_lab, unique_lab_name

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
              pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
RUN = ("-p", "no:cacheprovider", "-p", "no:randomly")
SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST = (dt.date.today() - dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def gate_lab() -> Iterator[Lab]:
    with make_lab(unique_lab_name("gl"), hosts=3, disk_size="64M") as lab:
        yield lab


def cases_of(directory: Path) -> dict[str, tuple[str, ET.Element]]:
    """test name -> (image, testcase element), over every per-image report."""
    out = {}
    for path in directory.glob("*.xml"):
        for suite in ET.parse(path).getroot().iter("testsuite"):
            for case in suite.iter("testcase"):
                out[case.get("name", "")] = (suite.get("name", ""), case)
    return out


def props(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def test_the_shipped_suites_fail_on_the_lab_only_by_surprise(
    pytester: pytest.Pytester, gate_lab: Lab
) -> None:
    """``kind: lab``: the lab's own waivers turn every by-design failure into WAIVED with its
    reason; the run passes."""
    for suite in ("image", "security"):
        shutil.copytree(ROOT / "suites" / suite, pytester.path / "suites" / suite)
    pytester.makefile(".yaml", **{"azl-targets": (
        f"targets:\n  mylab:\n    kind: lab\n    lab: {gate_lab.name}\n")})
    result = pytester.runpytest_subprocess(*RUN, "--azl-target=mylab", "-v", "suites",
                                           "--azl-junit-dir=reports", timeout=1200)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out
    assert " FAILED" not in out
    waived = re.findall(r"^(suites/\S+) WAIVED", out, re.MULTILINE)
    assert len(waived) >= 10, out
    section = out[out.index("azl waivers"):]
    assert "lab:waivers.yaml[1] *suites/image/test_kernel.py::test_kernel_flavour_and_release" \
        in section
    assert "waived permanently: lab hosts run this machine's kernel" in section
    assert "kernel sentinel off on" in out and "shares this machine's kernel" in out
    found = cases_of(pytester.path / "reports")
    for host in (h.name for h in gate_lab.hosts):
        _, case = found[f"test_kernel_flavour_and_release[{host}]"]
        skipped = case.find("skipped")
        assert skipped is not None and skipped.get("type") == "azl.waived"
        assert (skipped.get("message") or "").startswith("waived permanently: lab hosts run")
        assert props(case)["azl.waiver.id"] == "lab:waivers.yaml[1]"


LAB_TESTS = """
def test_version(azl_host):
    assert azl_host.facts.version_id == "3.1", f"VERSION_ID {azl_host.facts.version_id}"

def test_release_file(azl_host):
    assert azl_host.exists("/etc/azurelinux-release"), "no /etc/azurelinux-release"

def test_hostname(azl_host):
    assert azl_host.check_output("hostname") == azl_host.name
"""


def test_waivers_on_lab_hosts(pytester: pytest.Pytester, gate_lab: Lab) -> None:
    pytester.makepyfile(test_lab_waivers=LAB_TESTS)
    waivers = pytester.makefile(".yaml", **{"azl-waivers": f"""
waivers:
  - match: "test_lab_waivers.py::test_version"
    reason: 3.1 is not out yet
    tracker: https://example.net/AZL-31
    expires: {SOON}
  - match: "test_lab_waivers.py::test_release_file"
    reason: mariner has no azurelinux-release
    expires: {PAST}
  - match: "test_lab_waivers.py::test_hostname"
    reason: hostnames were wrong last month
    expires: {SOON}
  - match: "test_lab_waivers.py::test_gone"
    reason: a removed test
    expires: {SOON}
"""})
    result = pytester.runpytest_subprocess(
        *RUN, f"--azl-targets-file={gate_lab.targets_file}", "--azl-target=lab", "-v",
        f"--azl-waivers={waivers}", "--azl-junit-dir=reports", timeout=600)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out  # the expired waiver's failure
    hosts = sorted(h.name for h in gate_lab.hosts)
    mariner = next(h.name for h in gate_lab.hosts if h.variant == "mariner2")
    for host in hosts:
        assert re.search(rf"test_version\[{host}\] WAIVED", out)
        assert re.search(rf"test_hostname\[{host}\] PASSED", out)
    assert re.search(rf"test_release_file\[{mariner}\] FAILED", out)
    section = out[out.index("azl waivers"):]
    assert section.index("EXPIRED") < section.index("waived (3 failing")
    assert section.index("waived (3 failing") < section.index("waivers no longer needed")
    assert section.index("waivers no longer needed") < section.index("stale waivers")
    assert f"matching: test_lab_waivers.py::test_release_file[{mariner}]" in section
    assert "azl-waivers.yaml[3] test_lab_waivers.py::test_gone: a removed test" in section

    found = cases_of(pytester.path / "reports")
    images = set()
    for host in hosts:
        image, case = found[f"test_version[{host}]"]
        images.add(image)
        skipped = case.find("skipped")
        assert skipped is not None and skipped.get("type") == "azl.waived"
        assert skipped.get("message") == (f"waived until {SOON}: 3.1 is not out yet "
                                          "(https://example.net/AZL-31)")
        assert props(case)["azl.waiver.reason"] == "3.1 is not out yet"
        assert props(case)["azl.waiver.expires"] == SOON
        assert props(found[f"test_hostname[{host}]"][1])["azl.waiver.state"] == "unneeded"
    assert len(images) == 3  # one per-image report per variant, each with its waived case
    _, expired = found[f"test_release_file[{mariner}]"]
    assert outcome(expired) == "failure" and props(expired)["azl.waiver.state"] == "expired"
    for path in (pytester.path / "reports").glob("*.xml"):
        suite_props = {p.get("name"): p.get("value") for p in
                       ET.parse(path).getroot().find("testsuite").find("properties")}  # type: ignore[union-attr]
        assert "test_lab_waivers.py::test_gone" in (suite_props["azl.waivers.stale"] or "")


RERUN_CONFTEST = """
import os
import time
from pytest_azlinux.lab import Lab

def pytest_runtest_logreport(report):
    # the host comes back when its first attempt has failed: its sshd answers before the
    # rerun connects (the run tries each host once, without a reconnect budget)
    if report.outcome == "rerun":
        lab, victim = Lab(os.environ["AZL_GATE_LAB"]), os.environ["AZL_GATE_HOST"]
        lab.fault(victim, clear=True)
        deadline = time.monotonic() + 30
        while dict((h.name, s) for h, s in lab.status())[victim] != "ok":
            assert time.monotonic() < deadline, lab.status()
            time.sleep(0.2)
"""
RERUN_TESTS = """
from pathlib import Path

def test_reachable(azl_host):
    assert azl_host.check_output("hostname") == azl_host.name

def test_finding(azl_host):
    path = Path(__file__).parent / f"finding-{azl_host.name}"
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))
    assert False, "a real finding on " + azl_host.name
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_a_host_down_for_the_first_attempt_is_rerun_and_flaky(
    pytester: pytest.Pytester, gate_lab: Lab, monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
) -> None:
    hosts = sorted(h.name for h in gate_lab.hosts)
    victim = hosts[1]
    monkeypatch.setenv("AZL_GATE_LAB", gate_lab.name)
    monkeypatch.setenv("AZL_GATE_HOST", victim)
    pytester.makeconftest(RERUN_CONFTEST)
    pytester.makepyfile(test_reruns=RERUN_TESTS)
    # no reconnect budget: the first attempt ends at the refused connect, not 60 s later (the
    # test is about the rerun, not about waiting out the budget)
    defaults = yaml.safe_load(gate_lab.targets_file.read_text())["targets"]["lab"]["defaults"]
    targets = lab_targets_with(gate_lab, pytester.path,
                               defaults={**defaults, "reconnect_within": 0})
    gate_lab.fault(victim, sshd_stop=True)  # unreachable from the start of the run
    try:
        result = pytester.runpytest_subprocess(
            *RUN, f"--azl-targets-file={targets}", "--azl-target=lab", "-v",
            "--azl-reruns=2", "--azl-junit-dir=reports", *xdist, timeout=600)
    finally:
        gate_lab.fault(victim, clear=True)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out  # the findings
    assert re.search(rf"RERUN\s.*test_reachable\[{victim}\]|test_reachable\[{victim}\] RERUN",
                     out), out
    assert len(re.findall(r"RERUN", out.split("azl flaky tests")[0])) == 1, out
    section = out[out.index("azl flaky tests"):]
    assert f"test_reruns.py::test_reachable[{victim}]: passed on attempt 2 after " \
           f"HostUnreachable: host {victim}" in section
    for host in hosts:  # a finding is never rerun
        assert (pytester.path / f"finding-{host}").read_text() == "1"
    found = cases_of(pytester.path / "reports")
    _, flaky = found[f"test_reachable[{victim}]"]
    assert outcome(flaky) == "passed" and props(flaky)["azl.flaky"] == "2"
    for host in hosts:
        assert outcome(found[f"test_finding[{host}]"][1]) == "failure"
        if host != victim:
            assert "azl.flaky" not in props(found[f"test_reachable[{host}]"][1])
