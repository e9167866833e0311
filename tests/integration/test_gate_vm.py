"""Sentinels on a lab VM (a kernel, systemd and auditd of its own), with real provoked events.

One VM of its own (variant selinux-enforcing), because the tests leave traces on purpose (a
WARNING line, an OOM kill, a failed unit, SELinux denials) that other modules' VMs must not
see. Each event is caused by a test that does not look for it; the sentinel fails that test
at teardown, naming the sentinel, the lines and the host, and the next test is not blamed.
For development, ``AZL_TEST_GATE_VM_LAB=NAME`` uses the running lab NAME (its VM of this
variant is booted if missing) and leaves it running.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.lab.vm import start_vms, stop_vms, write_vm_targets
from pytest_azlinux.targets import SshTarget, load_targets, ssh_host_specs
from tests.fixtures.lab import connect, make_lab, unique_lab_name

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
              pytest.mark.timeout(1800)]
VARIANT = "selinux-enforcing"
REUSE_ENV = "AZL_TEST_GATE_VM_LAB"
WARNING_LINE = "WARNING: CPU: 0 PID: 4242 at drivers/azl/gate.c:42 gate_provoked+0x10/0x20"
DENIAL = "runcon -t httpd_t -r system_r -u system_u -- cat /etc/shadow"
FAILING_UNIT = "azl-gate-fail"

TESTS = f'''
import pytest

WARNING = "printf '<4>{WARNING_LINE}\\\\n' > /dev/kmsg"


def test_a_warning_in_the_kernel_log(azl_host):
    azl_host.run(WARNING, check=True)


def test_b_quiet(azl_host):
    assert azl_host.check_output("cat /etc/hostname")


def test_c_oom_kill_in_a_small_cgroup(azl_host):
    azl_host.run("systemd-run --unit=azl-gate-oom --collect --wait -p MemoryMax=16M "
                 "-p MemorySwapMax=0 sh -c 'tail /dev/zero'", timeout=300)


def test_d_a_unit_fails(azl_host):
    azl_host.run("systemd-run --unit={FAILING_UNIT} sh -c 'exit 3'", check=True)
    azl_host.run("for i in $(seq 100); do systemctl is-failed -q {FAILING_UNIT} && exit 0; "
                 "sleep 0.2; done; exit 1", check=True, timeout=120)


def test_e_quiet_while_the_unit_stays_failed(azl_host):
    assert azl_host.check_output("cat /etc/hostname")


def test_f_selinux_denial(azl_host):
    azl_host.run({DENIAL!r})


@pytest.mark.azl_no_sentinels("kernel", reason="writes to the kernel log on purpose")
def test_g_opted_out(azl_host):
    azl_host.run(WARNING, check=True)


def test_h_quiet_after_the_opted_out_one(azl_host):
    assert azl_host.check_output("cat /etc/hostname")
'''


@pytest.fixture(scope="module")
def gate_vm() -> Iterator[tuple[Lab, Path]]:
    """A lab with one VM; its VM targets file."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        lab = Lab(reuse)
        if lab.load_state() is None:
            pytest.fail(f"{REUSE_ENV}={reuse}: no such lab is up", pytrace=False)
        start_vms(lab, [VARIANT])
        yield lab, write_vm_targets(lab)
        return
    with make_lab(unique_lab_name("gv"), hosts=1, variants=["azl3"], disk_size="64M") as lab:
        try:
            start_vms(lab, [VARIANT])
            yield lab, write_vm_targets(lab)
        finally:
            stop_vms(lab)


@pytest.fixture(scope="module")
def vm_host(gate_vm: tuple[Lab, Path]) -> Iterator[Host]:
    target = load_targets(gate_vm[1]).get("lab-vm")
    assert isinstance(target, SshTarget)
    (spec,) = (s for s in ssh_host_specs(target, "lab-vm") if s.name.endswith(VARIANT))
    host = connect(spec)
    try:
        yield host
    finally:
        host.run(f"systemctl reset-failed {FAILING_UNIT} 2>/dev/null; true")
        host.close()


def write_targets(pytester: pytest.Pytester, gate_vm: tuple[Lab, Path],
                  selinux_allow: list[dict[str, str]] | None = None) -> Path:
    data: dict[str, Any] = yaml.safe_load(gate_vm[1].read_text())
    target = data["targets"]["lab-vm"]
    target["hosts"] = [h for h in target["hosts"] if h["name"].endswith(VARIANT)]
    if selinux_allow is not None:
        target["suites"]["selinux"]["allowlist"] += selinux_allow
    path = pytester.path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": {"vm": target}}, sort_keys=False))
    return path


def run(pytester: pytest.Pytester, targets: Path, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_vm_events=TESTS)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-target=vm", f"--azl-targets-file={targets}",
        "--azl-junit-dir=reports", "-v", "-rfE", *args, timeout=1200,
    )


def teardown_failures(out: str) -> dict[str, str]:
    """test name -> the text of its failure in the FAILURES section (sentinel findings are
    failures at teardown)."""
    body = out[out.index("= FAILURES ="):out.index("short test summary info")]
    parts = re.split(r"\n_{3,} (\S+) _{3,}\n", body)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_events_fail_the_test_in_whose_window_they_appeared(
    pytester: pytest.Pytester, gate_vm: tuple[Lab, Path], vm_host: Host
) -> None:
    host = vm_host.name
    result = run(pytester, write_targets(pytester, gate_vm))
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    failures = teardown_failures(out)
    assert set(failures) == {
        f"test_a_warning_in_the_kernel_log[{host}]", f"test_c_oom_kill_in_a_small_cgroup[{host}]",
        f"test_d_a_unit_fails[{host}]", f"test_f_selinux_denial[{host}]",
    }, out
    warning = failures[f"test_a_warning_in_the_kernel_log[{host}]"]
    assert f"sentinels: new on {host} during this test" in warning
    assert "kernel: WARNING" in warning and WARNING_LINE in warning
    assert "(written by user space)" in warning
    oom = failures[f"test_c_oom_kill_in_a_small_cgroup[{host}]"]
    assert "kernel: OOM kill" in oom and "Memory cgroup out of memory: Killed process" in oom
    unit = failures[f"test_d_a_unit_fails[{host}]"]
    assert "units: 1 unit(s) failed" in unit and f"{FAILING_UNIT}.service" in unit
    assert "kernel:" not in unit
    denial = failures[f"test_f_selinux_denial[{host}]"]
    assert "denials:" in denial and "not in suites.selinux.allowlist" in denial
    assert "comm=runcon" in denial and "unconfined_t -> httpd_t:process" in denial
    # the call passed each time: the finding is the teardown's, reported as FAILED
    for name in failures:
        assert re.search(rf"{re.escape(name)} PASSED", out)
        assert re.search(rf"{re.escape(name)} FAILED", out)
    assert "4 failed, 8 passed" in out

    (report,) = (pytester.path / "reports").glob("*.xml")
    cases = {c.get("name"): c for c in ET.parse(report).getroot().iter("testcase")}
    failed = cases[f"test_a_warning_in_the_kernel_log[{host}]"].find("failure")
    assert failed is not None and WARNING_LINE in (failed.text or "")
    assert "SentinelFindings" in (failed.get("message") or "")
    for quiet in ("test_b_quiet", "test_e_quiet_while_the_unit_stays_failed",
                  "test_g_opted_out", "test_h_quiet_after_the_opted_out_one"):
        case = cases[f"{quiet}[{host}]"]
        assert case.find("failure") is None and case.find("error") is None, quiet


def test_the_selinux_allowlist_explains_denials_for_the_sentinel(
    pytester: pytest.Pytester, gate_vm: tuple[Lab, Path], vm_host: Host
) -> None:
    targets = write_targets(pytester, gate_vm, selinux_allow=[
        {"comm": "runcon", "reason": "this module's denial workload"},
        {"comm": "cat", "stype": "httpd_t", "reason": "this module's denial workload"},
    ])
    result = run(pytester, targets, "-k", "selinux_denial or quiet")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_the_sentinel_stays_out_of_the_selinux_watchers_way(
    pytester: pytest.Pytester, gate_vm: tuple[Lab, Path], vm_host: Host
) -> None:
    """A test the SELinux suite's watcher follows reports its denials there, once."""
    pytester.makepyfile(test_watched=f'''
import pytest

@pytest.mark.azl_selinux_watch(mode="warn")
def test_watched(azl_host):
    azl_host.run({DENIAL!r})
''')
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--azl-target=vm",
        f"--azl-targets-file={write_targets(pytester, gate_vm)}", "-rA", timeout=600)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out
    assert "SelinuxDenialWarning" in out and "SentinelFindings" not in out
