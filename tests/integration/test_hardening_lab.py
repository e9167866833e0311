"""The hardening suite end to end, through pytest, against the namespaced lab hosts.

Lab hosts (tests/fixtures/lab.py: azl3, azl3-hwe, mariner2) run this machine's kernel and
Debian userland in namespaces of their own, with the lab's sshd. What they show is real, so
some controls pass (root login refused, ASLR, no world-writable files) and some fail
(UsePAM no in the lab's sshd config, /etc/shadow 0640, ICMP redirects accepted); the kernel's
audit interface cannot be reached from a network namespace other than the first, which is an
ERROR (could not look), not a finding.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_azlinux.errors import CommandTimeout
from pytest_azlinux.hardening import load_controls
from pytest_azlinux.hardening.baseline import HostBaseline, LevelChoice, plan_for
from pytest_azlinux.hardening.settings import HardeningSettings
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.profiles import load_profiles
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.model import CaseRecord
from tests.fixtures.lab import connect, lab_host_specs, lab_targets_with

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "hardening"
PROPERTIES = ("azl.control.id", "azl.control.severity", "azl.control.level",
              "azl.control.references")  # fmt: skip


def _run(pytester: pytest.Pytester, targets: Path, *args: str) -> tuple[Any, dict[str, CaseRecord]]:
    """Run the suite; ``{test name: case}`` from the per-image JUnit reports."""
    dest = pytester.path / "hardening"
    dest.mkdir(exist_ok=True)
    for path in SUITE.glob("*.py"):
        shutil.copy(path, dest / path.name)
    reports = pytester.path / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    result = pytester.runpytest_subprocess(
        "hardening", "--azl-target", "lab", "--azl-targets-file", str(targets),
        "--azl-junit-dir", str(reports), "-p", "no:cacheprovider", "-rfEs", *args, timeout=600,
    )
    cases = {c.name: c for xml in reports.glob("*.xml") for c in read_cases(xml)[1]}
    assert cases, result.stdout.str()
    return result, cases


def _host(lab: Lab, variant: str) -> str:
    return next(h.name for h in lab.hosts if h.variant == variant)


def test_every_control_runs_per_host_with_its_properties(pytester: pytest.Pytester,
                                                         lab: Lab) -> None:
    _, cases = _run(pytester, lab_targets_with(lab, pytester.path))
    controls = load_controls()
    for host in (h.name for h in lab.hosts):
        mine = {name: case for name, case in cases.items() if name.endswith(f"-{host}]")}
        assert len(mine) == len(controls), host
        for control in controls:
            case = mine[f"test_control[{control.id}-{host}]"]
            for key in PROPERTIES:
                assert key in case.properties, (case.name, key)
            assert case.properties["azl.control.id"] == control.id
            assert case.properties["azl.control.severity"] == control.severity
            assert case.properties["azl.control.level"] == str(control.level)
            assert case.properties["azl.control.references"] == control.references_text()
            assert case.host == host
        outcomes = Counter(c.outcome for c in mine.values())
        assert outcomes["passed"] >= 20 and outcomes["failed"] >= 20, (host, outcomes)


def test_findings_errors_and_skips_say_why(pytester: pytest.Pytester, lab: Lab) -> None:
    _, cases = _run(pytester, lab_targets_with(lab, pytester.path))
    host = _host(lab, "azl3")

    def case(control_id: str) -> CaseRecord:
        return cases[f"test_control[{control_id}-{host}]"]

    # the lab's sshd config (sshd -f /etc/ssh/azl_sshd_config): root refused, no PAM
    assert case("AZL-SSH-001").outcome == "passed"
    finding = case("AZL-SSH-014")
    assert finding.outcome == "failed"
    # the message keeps the finding's headline and its lines (report/collector.py)
    assert ("AZL-SSH-014: found usepam no (sshd -T -f /etc/ssh/azl_sshd_config); expected "
            "`usepam` yes\n") in finding.message
    assert "remediation: `UsePAM yes` in /etc/ssh/sshd_config" in finding.details
    assert "references:  sshd_enable_pam (CCE-86722-6)" in finding.details
    # Debian's /etc/shadow is 0640 root:shadow; Azure Linux ships 0000 root:root
    assert "AZL-FILE-002: found /etc/shadow 0640 root:shadow; expected /etc/shadow: mode 0000" in (
        case("AZL-FILE-002").message)
    # the kernel's audit interface is out of reach from a lab host's network namespace
    error = case("AZL-AUD-003")
    assert error.outcome == "error"
    assert f"{host}: AZL-AUD-003: cannot check: auditctl failed" in error.message
    # skipped: a level not selected, a profile attribute, a missing subject
    assert "level 2 control; level 1 selected (the default level)" in case("AZL-SSH-019").message
    assert "not applicable: profile azl-3.0" in case("AZL-CRY-001").message
    assert "has fips=false" in case("AZL-CRY-001").message


def test_level_two_and_target_settings(pytester: pytest.Pytester, lab: Lab) -> None:
    targets = lab_targets_with(lab, pytester.path, suites={
        "hardening": {"not_applicable": {"AZL-NET-003": "the lab bridge routes on purpose"}}})
    _, cases = _run(pytester, targets, "--azl-hardening-level", "2")
    host = _host(lab, "azl3")
    forwarding = cases[f"test_control[AZL-SSH-019-{host}]"]
    assert forwarding.outcome == "failed"  # level 2 now runs
    assert "allowtcpforwarding yes" in forwarding.message
    skipped = cases[f"test_control[AZL-NET-003-{host}]"]
    assert skipped.outcome == "skipped"
    assert "suites.hardening.not_applicable: the lab bridge routes on purpose" in skipped.message


def test_a_bad_setting_is_one_line_naming_target_and_field(pytester: pytest.Pytester,
                                                           lab: Lab) -> None:
    targets = lab_targets_with(lab, pytester.path, suites={
        "hardening": {"not_applicable": {"AZL-XYZ-001": "x"}}})
    shutil.copytree(SUITE, pytester.path / "hardening", dirs_exist_ok=True)
    result = pytester.runpytest_subprocess(
        "hardening", "--azl-target", "lab", "--azl-targets-file", str(targets),
        "-p", "no:cacheprovider", "-k", "AZL-SSH-001", timeout=600)
    # validated at start-up: a usage error (exit 4) before any host is touched
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if "suites.hardening" in line] == [
        "ERROR: target 'lab': field 'suites.hardening.not_applicable': unknown control id "
        "'AZL-XYZ-001'"]


# --- one read per host ---------------------------------------------------------------------


class _Counting:
    """The real transport, counting the commands sent through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.scripts: list[str] = []

    def run(self, script: str, **kwargs: Any) -> Any:
        self.scripts.append(script)
        return self.inner.run(script, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _baseline(host: Host) -> HostBaseline:
    profile = load_profiles().get("azl-3.0")
    controls = list(load_controls())
    return HostBaseline(host, profile, HardeningSettings(), LevelChoice(2, "test"), controls)


def test_one_command_reads_everything_every_control_needs(lab: Lab) -> None:
    spec = next(s for s in lab_host_specs(lab) if s.name == _host(lab, "azl3"))
    host = connect(spec)
    try:
        counting = _Counting(host.transport)
        host.transport = counting
        baseline = _baseline(host)
        verdicts = [c.check.judge(baseline.evidence) for c in load_controls()]
        assert len(verdicts) == len(load_controls())
        # the image facts (kernel command line), the gathering itself (as root) and the
        # package inventory (some controls judge by packages; as the lab's user, so its own
        # batch; a pytest run reads it ahead with the other suites' reads): three commands
        assert len(counting.scripts) == 3, [s[:60] for s in counting.scripts]
        assert any("==> sysctl" in s or "'==> %s" in s for s in counting.scripts)
        assert any("rpm -qa" in s and "dpkg-query" in s for s in counting.scripts)
        outcomes = Counter(v.outcome for v in verdicts)
        assert outcomes["passed"] and outcomes["failed"], outcomes
    finally:
        host.close()


def test_a_host_that_cannot_be_read_is_read_once(lab: Lab) -> None:
    """A gathering that times out is an ERROR for every control, from one attempt."""
    spec = next(s for s in lab_host_specs(lab) if s.name == _host(lab, "azl3"))
    host = connect(spec, timeout=60.0)
    try:
        host.facts  # noqa: B018 - read with the normal timeout
        counting = _Counting(host.transport)
        host.transport = counting
        host.default_timeout = 0.05  # the find over /usr alone takes longer
        baseline = _baseline(host)
        with pytest.raises(CommandTimeout) as first:
            baseline.evidence  # noqa: B018
        with pytest.raises(CommandTimeout) as second:
            baseline.evidence  # noqa: B018
        assert second.value is first.value
        assert len(counting.scripts) == 1
        assert plan_for(load_controls()).section_names()  # the full plan was attempted
    finally:
        host.close()
