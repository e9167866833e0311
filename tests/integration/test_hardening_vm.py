"""The hardening suite against two lab VMs: the hardened one scores higher than its twin.

``selinux-permissive`` and ``hardened`` boot the same image with the same profile; ``hardened``
adds the file-only recipe of lab/vm_variants.py ``HARDENING_FILES`` (sysctl.d, modprobe.d, an
sshd drop-in, fstab, audit rules, tmpfiles modes, login.defs, sudo defaults) and
``audit=1 audit_backlog_limit=8192``. The suite runs at level 2 against both; the test lists
the controls that differ and checks that every difference is the recipe's doing.

The VMs come from the session's VM lab (tests/fixtures/vm.py), to which ``hardened`` is added;
``AZL_TEST_HARDENING_VM_LAB=NAME`` uses a running lab NAME instead (``azl lab up --name NAME
--vm selinux-permissive --vm hardened``), booting what it lacks and leaving it running.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.vm import start_vms, write_vm_targets
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.model import CaseRecord
from pytest_azlinux.targets import load_targets, ssh_host_specs
from tests.fixtures.lab import connected
from tests.fixtures.vm import denials_since, journal_cursor

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "hardening"
TWINS = ("selinux-permissive", "hardened")
REUSE_ENV = "AZL_TEST_HARDENING_VM_LAB"


@pytest.fixture(scope="module")
def twin_vms(request: pytest.FixtureRequest) -> Iterator[tuple[Path, dict[str, str]]]:
    """(VM targets file, {variant: VM host name}) for the two twins, booted if missing."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        lab = Lab(reuse)
        if lab.load_state() is None:
            pytest.fail(f"{REUSE_ENV}={reuse}: no such lab is up", pytrace=False)
    else:
        lab = request.getfixturevalue("vm_lab").lab  # stopped with the session's VM lab
    vms = start_vms(lab, list(TWINS))
    yield write_vm_targets(lab), {vm.variant: vm.name for vm in vms}


def _run(pytester: pytest.Pytester, targets: Path, names: dict[str, str]) -> list[CaseRecord]:
    data: dict[str, Any] = yaml.safe_load(targets.read_text())
    target = data["targets"]["lab-vm"]
    target["hosts"] = [h for h in target["hosts"] if h["name"] in names.values()]
    mine = pytester.path / "targets.yaml"
    mine.write_text(yaml.safe_dump({"targets": {"vm": target}}))
    dest = pytester.path / "hardening"
    dest.mkdir(exist_ok=True)
    for path in SUITE.glob("*.py"):
        shutil.copy(path, dest / path.name)
    reports = pytester.path / "reports"
    result = pytester.runpytest_subprocess(
        "hardening", "--azl-target", "vm", "--azl-targets-file", str(mine),
        "--azl-junit-dir", str(reports), "--azl-hardening-level", "2", "-p", "no:cacheprovider",
        "-n", "2",  # a worker per VM: each VM's one vCPU is one core under TCG
        timeout=900,
    )
    cases = [c for xml in reports.glob("*.xml") for c in read_cases(xml)[1]]
    assert cases, result.stdout.str()
    return cases


def _by_control(cases: list[CaseRecord], host: str) -> dict[str, CaseRecord]:
    return {c.properties["azl.control.id"]: c for c in cases if c.host == host}


def score(cases: dict[str, CaseRecord]) -> tuple[int, int]:
    """(passed, applicable): applicable = passed + failed + error (skips do not count)."""
    counts = Counter(c.outcome for c in cases.values())
    return counts["passed"], counts["passed"] + counts["failed"] + counts["error"]


def test_the_hardened_vm_scores_higher_and_the_differences_are_the_recipe(
    pytester: pytest.Pytester, twin_vms: tuple[Path, dict[str, str]]
) -> None:
    targets, names = twin_vms
    specs = {s.name: s for s in ssh_host_specs(load_targets(targets).get("lab-vm"), "lab-vm")
             if s.name in names.values()}
    with connected(specs) as hosts:
        cursors = {name: journal_cursor(host) for name, host in hosts.items()}
        cases = _run(pytester, targets, names)
        # read-only, and silent towards SELinux: the reads leave no denial behind (modprobe
        # in kmod_t once logged one for the shell's output file in /tmp)
        for name, host in hosts.items():
            avcs = denials_since(host, cursors[name])
            assert not avcs.strip(), f"{name}: the hardening read caused denials:\n{avcs}"
    default = _by_control(cases, names["selinux-permissive"])
    hardened = _by_control(cases, names["hardened"])
    assert set(default) == set(hardened) and len(default) >= 60
    # one report per image: the twins differ by VARIANT_ID
    images = {c.image for c in cases}
    assert images == {"azurelinux-3.0.20251021-core-efi-selinux",
                      "azurelinux-3.0.20251021-core-efi-selinux-hardened"}  # fmt: skip
    (d_pass, d_all), (h_pass, h_all) = score(default), score(hardened)
    differ = sorted(c for c in default if default[c].outcome != hardened[c].outcome)
    print(f"default {d_pass}/{d_all} passed, hardened {h_pass}/{h_all} passed; "
          f"{len(differ)} controls differ:")
    for cid in differ:
        print(f"  {cid}: {default[cid].outcome} -> {hardened[cid].outcome}  "
              f"({default[cid].properties['azl.control.title']})")
    assert h_pass > d_pass and h_all == d_all
    # every difference is a control the recipe fixes: failed on the twin, passed hardened
    for cid in differ:
        assert (default[cid].outcome, hardened[cid].outcome) == ("failed", "passed"), cid
    for cid in ("AZL-SSH-007", "AZL-NET-005", "AZL-KRN-005", "AZL-MOD-007", "AZL-MNT-004",
                "AZL-FILE-002", "AZL-AUD-003", "AZL-AUD-012", "AZL-ACC-012"):  # fmt: skip
        assert cid in differ, cid
    # both are real hosts: the twin's findings carry the remediation, some controls pass there
    assert "remediation: `MaxAuthTries 4`" in default["AZL-SSH-007"].details
    assert d_pass >= 40
    # what neither has: no time daemon in the image, a NOPASSWD rule for the lab's user
    for cid in ("AZL-TIME-001", "AZL-ACC-016"):
        assert default[cid].outcome == hardened[cid].outcome == "failed", cid
    # not applicable by the shared profile (azl-3.0-core-efi-selinux): FIPS, built-in udf
    for cid in ("AZL-CRY-001", "AZL-MOD-006"):
        assert default[cid].outcome == hardened[cid].outcome == "skipped", cid
