"""The waiver summary speaks of this run only (``gate/summary.GateLedger``).

The default lab run (variants azl3, azl3-hwe, mariner2 on azl-1..3) is replayed through the
ledger with the lab's real waivers file (``lab/waivers.yaml``, loaded the way the gate loads
it from the lab target's context): each failing test is looked up in the real waiver set and
its report carries what ``gate/waiving.py`` records. Before, the summary called the eight
lab waivers for FIPS and OS Guard images "stale" in a run that started neither.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pytest_azlinux.gate.plugin import targets_waivers
from pytest_azlinux.gate.summary import GateLedger
from pytest_azlinux.gate.waivers import Subject, WaiverSet, parse_waivers
from pytest_azlinux.lab import Lab
from pytest_azlinux.report.model import (
    PROP_HOST,
    PROP_IMAGE,
    PROP_TARGET,
    PROP_WAIVER_ID,
    PROP_WAIVER_STATE,
)
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.targets import parse_targets

TODAY = dt.date(2026, 12, 7)
# The default lab's hosts and the image each runs (lab/variants).
HOSTS = {"azl-1": "azurelinux-3.0.20251021", "azl-2": "azurelinux-3.0.20251021-hwe",
         "azl-3": "mariner-2.0.20250925"}
# Tests of the suites that fail on namespaced lab hosts (the lab run's WAIVED ones), and
# one that passes everywhere.
FAILING = ("suites/image/test_kernel.py::test_kernel_flavour_and_release",
           "suites/image/test_kernel.py::test_kernel_cmdline",
           "suites/image/test_lsm.py::test_active_lsms",
           "suites/image/test_packages.py::test_package_versions",
           "suites/image/test_selinux_mode.py::test_selinux_config_consistent",
           "suites/security/test_selinux.py::test_selinux_mode")
PASSING = ("suites/image/test_fips.py::test_fips_enabled",
           "suites/image/test_sshd.py::test_sshd_presence")


class Lines:
    """Stands in for pytest's terminal reporter: keeps the summary's sections and lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str, **_: Any) -> None:
        self.lines.append(f"== {title}")

    def line(self, text: str, **_: Any) -> None:
        self.lines.append(text)


def lab_waivers() -> WaiverSet:
    parsed = parse_targets("targets:\n  lab: {kind: lab, lab: gsum}\n", "t.yaml", env={})
    lab = Lab("gsum", state_dir="/nonexistent/gsum")  # only its waivers file is asked for
    return targets_waivers([SelectedTarget("lab", parsed["lab"], (), context=lab)])


def report(waivers: WaiverSet, test: str, host: str, failed: bool) -> pytest.TestReport:
    """A call report as the gate leaves it: waived when a waiver covers the failure."""
    nodeid = f"{test}[{host}]"
    props: list[tuple[str, object]] = [(PROP_HOST, host), (PROP_TARGET, "lab"),
                                       (PROP_IMAGE, HOSTS[host])]
    found = waivers.lookup(Subject(nodeid, target="lab", image=HOSTS[host], host=host), TODAY)
    outcome = "failed" if failed else "passed"
    if found.active is not None:
        state = "waived" if failed else "unneeded"
        props += [(PROP_WAIVER_ID, found.active.source), (PROP_WAIVER_STATE, state)]
        outcome = "skipped" if failed else outcome
    longrepr = (test, 1, "waived") if outcome == "skipped" else None
    return pytest.TestReport(nodeid, (test, 1, test), {}, outcome,  # type: ignore[arg-type]
                             longrepr, "call", user_properties=props)


def ledger_after_lab_run(waivers: WaiverSet) -> GateLedger:
    ledger = GateLedger(waivers, ["lab"], lambda: TODAY)
    for host in HOSTS:
        for test in FAILING:
            ledger.pytest_runtest_logreport(report(waivers, test, host, failed=True))
        for test in PASSING:
            ledger.pytest_runtest_logreport(report(waivers, test, host, failed=False))
    return ledger


def test_the_labs_waivers_for_variants_not_started_are_not_stale() -> None:
    waivers = lab_waivers()
    ledger = ledger_after_lab_run(waivers)
    assert ledger.images == set(HOSTS.values())
    assert ledger.stale() == []
    assert ledger.unneeded() == []
    assert "azl.waivers.stale" not in ledger.run_properties()
    out = Lines()
    ledger.write(out)
    text = "\n".join(out.lines)
    assert "stale" not in text and "no longer needed" not in text
    assert "*-fips" not in text and "*-osguard" not in text  # variants this run did not start
    assert text.startswith("== azl waivers\nwaived (15 failing test(s)):")
    assert all(w.shipped for w in waivers.waivers)


USERS = """
waivers:
  - match: "*test_gone"
    images: ["*-osguard"]
    reason: for the OS Guard run
    expires: 2027-01-15
  - match: "*test_gone"
    hosts: ["aks-canary-*"]
    reason: for the canary pool
    expires: 2027-01-15
  - match: "*test_gone"
    images: ["azurelinux-*"]
    reason: a test that was removed
    expires: 2027-01-15
  - match: "*test_sshd_presence"
    reason: sshd was missing in November
    expires: 2027-01-15
  - match: "*test_gone"
    images: ["*-fips"]
    reason: expired, for the FIPS run
    expires: 2026-12-01
"""


def test_a_users_waivers_are_judged_against_this_runs_images_and_hosts() -> None:
    users = parse_waivers(USERS, "azl-waivers.yaml", dt.date(2026, 11, 20))
    ledger = ledger_after_lab_run(users + lab_waivers())
    # Scoped to an image or hosts this run did not include: for another run. Scoped to
    # images of this run and matching nothing: stale.
    assert [w.waiver.reason for w in ledger.stale()] == ["a test that was removed"]
    assert [w.waiver.reason for w, _ in ledger.unneeded()] == ["sshd was missing in November"]
    assert ledger.expired() == []  # expired, but for images this run did not include
