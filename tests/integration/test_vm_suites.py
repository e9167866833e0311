"""The real suites, through pytest, against the lab VM hosts (kernels with SELinux enforcing /
permissive, AppArmor, fips=1, dm-verity /usr) and against a namespaced lab host given the
same profiles (this machine's kernel: no LSM active, no FIPS, no verity).

The VMs are the session's (``vm_lab``, tests/fixtures/vm.py), shared with test_vm_hosts.py;
every check here reads them, and the only thing the tests do to a VM is the denial workload
(a confined ``cat`` of /etc/shadow) and a runc container that is removed again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_azlinux.host import Host
from pytest_azlinux.report.junit import read_cases
from pytest_azlinux.report.model import CaseRecord
from pytest_azlinux.selinux.mode import read_mode
from tests.fixtures.vm import VmLab

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"

# The denial workload: cat as httpd_t (a confined web-server domain) on /etc/shadow (shadow_t).
# Enforcing: the domain transition itself is denied. Permissive: it and the read are logged.
DENIAL = "runcon -t httpd_t -r system_r -u system_u -- cat /etc/shadow"
# Explains the workload of these tests (and of test_vm_hosts.py, which runs it on the same
# VMs earlier in the session) so that a boot-window check sees only the image's own denials.
WORKLOAD_ALLOW = [
    {"comm": "runcon", "reason": "the lab tests' own denial workload (runcon to httpd_t)"},
    {"comm": "cat", "stype": "httpd_t", "reason": "the lab tests' own denial workload"},
    {"kind": "error", "exe": "/usr/bin/dash", "reason": "the lab tests' own invalid context"},
]
# A namespaced lab host under each VM's profile: the check that passes on the VM must fail here.
NS_PROFILES = {
    "ns-baremetal": "azl-3.0-baremetal",
    "ns-core-efi-selinux": "azl-3.0-core-efi-selinux",
    "ns-aks-node": "aks-node-3.0",
    "ns-fips": "azl-3.0-fips",
    "ns-osguard": "azl-3.0-osguard",
}

WATCH_TESTS = f'''
import pytest

DENIAL = {DENIAL!r}


@pytest.mark.azl_selinux_watch(mode="fail")
def test_workload(azl_host):
    azl_host.run(DENIAL, sudo=True)


@pytest.mark.azl_selinux_watch(mode="fail")
def test_quiet(azl_host):
    azl_host.run("cat /etc/hostname", sudo=True, check=True)
'''


# --- helpers ------------------------------------------------------------------------------


def _vm_target(vm_lab: VmLab) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(vm_lab.targets_file.read_text())
    target: dict[str, Any] = data["targets"]["lab-vm"]
    return target


def _vm_name(vm_lab: VmLab, variant: str) -> str:
    return vm_lab.vms[variant].name


def _write_targets(pytester: pytest.Pytester, vm_lab: VmLab, variants: list[str],
                   namespaced: dict[str, str] | None = None,
                   suites: dict[str, Any] | None = None) -> Path:
    """A copy of the VM targets file: the given VMs (as written, with their ``profile:``),
    the namespaced host once per ``{name: profile}``, and the target's ``suites``."""
    target = _vm_target(vm_lab)
    names = {_vm_name(vm_lab, v) for v in variants}
    hosts = [h for h in target["hosts"] if h["name"] in names]
    ns = vm_lab.namespaced_spec()
    for name, profile in (namespaced or {}).items():
        hosts.append({
            "name": name, "address": ns.address, "user": ns.user,
            "identity_file": str(ns.identity_file), "known_hosts": str(ns.known_hosts),
            "host_key_policy": "strict", "sudo": True, "profile": profile,
        })  # fmt: skip
    target["hosts"] = hosts
    if suites is not None:
        target["suites"] = suites
    path = pytester.path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": {"vm": target}}, sort_keys=False))
    return path


def _copy(pytester: pytest.Pytester, *files: str) -> None:
    for rel in files:
        src = SUITES / rel
        dest = pytester.path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy(src, dest)


def _run(pytester: pytest.Pytester, targets: Path, *args: str) -> tuple[Any, dict[str, CaseRecord]]:
    """Run pytest on the copied suites; the result and ``{test id: case}`` of the per-image
    JUnit reports."""
    reports = pytester.path / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    result = pytester.runpytest_subprocess(
        "--azl-target", "vm", "--azl-targets-file", str(targets),
        "--azl-junit-dir", str(reports), "-p", "no:cacheprovider", "-rfEs", *args,
        timeout=300,
    )
    cases = {c.name: c for xml in reports.glob("*.xml") for c in read_cases(xml)[1]}
    assert cases, result.stdout.str()
    return result, cases


def _text(case: CaseRecord) -> str:
    return f"{case.message}\n{case.details}"


# --- image posture ------------------------------------------------------------------------

# (test, VM variant whose kernel has it, namespaced alias under the same profile, what the
# namespaced host's failure must say)
POSTURE = [
    ("test_selinux_mode", "selinux-enforcing", "ns-baremetal",
     ["selinux.runtime: expected enforcing, found runtime=disabled",
      "the baremetal image config sets SELinux enforcing"]),
    ("test_selinux_mode", "selinux-permissive", "ns-core-efi-selinux",
     ["selinux.runtime: expected permissive, found runtime=disabled",
      "core-efi-selinux, full and OVA configs set permissive"]),
    ("test_active_lsms", "selinux-enforcing", "ns-baremetal",
     ["lsm_include: expected active LSMs include lockdown,landlock,yama,selinux, found"]),
    ("test_apparmor_matches_profile", "apparmor", "ns-aks-node",
     ["AppArmor not enabled; profile aks-node-3.0 expects it: missing", "AgentBaker PR #7261"]),
    ("test_active_lsms", "apparmor", "ns-aks-node",
     ["lsm_include: expected active LSMs include lockdown,landlock,yama,apparmor, found"]),
    ("test_fips_enabled", "fips", "ns-fips",
     ["fips.fips_enabled: expected 1, found", "add dracut-fips and fips=1"]),
    ("test_fips_enabled", "verity", "ns-osguard",
     ["fips.fips_enabled: expected 1, found", "osguard-amd64.yaml sets fips=1"]),
    ("test_usr_verity", "verity", "ns-osguard",
     ["verity.usr: expected /dev/mapper/usr active (veritysetup status usr), found"]),
    ("test_usr_read_only", "verity", "ns-osguard",
     ["usr.mount: expected /usr a separate read-only mount of /dev/mapper/usr, found"]),
]  # fmt: skip


def test_posture_passes_on_the_vm_with_the_feature_and_fails_on_a_namespaced_host(
    pytester: pytest.Pytester, vm_lab: VmLab
) -> None:
    _copy(pytester, "image")
    targets = _write_targets(pytester, vm_lab, list(vm_lab.vms), NS_PROFILES)
    selected = ("test_selinux_ or test_active_lsms or test_apparmor or test_fips or test_usr_"
                " or test_kernel_cmdline")  # test names only: host names say "apparmor"
    _, cases = _run(pytester, targets, "-k", selected)
    problems = []
    for test, variant, ns, says in POSTURE:
        vm_case = cases[f"{test}[{_vm_name(vm_lab, variant)}]"]
        if vm_case.outcome != "passed":
            problems.append(f"{test} on VM {variant}: {vm_case.outcome}: {_text(vm_case)}")
        ns_case = cases[f"{test}[{ns}]"]
        text = _text(ns_case)
        if ns_case.outcome != "failed" or not all(s in text for s in says):
            problems.append(f"{test} on {ns}: {ns_case.outcome}, wanted {says}: {text}")
    assert not problems, "\n".join(problems)
    # the new profile covers the permissive VM completely: mode, config, cmdline, LSMs
    for test in ("test_selinux_mode", "test_selinux_config_consistent", "test_kernel_cmdline",
                 "test_active_lsms"):
        case = cases[f"{test}[{_vm_name(vm_lab, 'selinux-permissive')}]"]
        assert case.outcome == "passed", _text(case)
    # every SELinux VM: the three readings agree with each other and the profile
    for variant in ("selinux-enforcing", "selinux-permissive", "fips", "verity"):
        case = cases[f"test_selinux_config_consistent[{_vm_name(vm_lab, variant)}]"]
        assert case.outcome == "passed", _text(case)
    # where the Debian userland cannot be the image, the failure says what is missing
    fips = cases[f"test_openssl_fips_provider[{_vm_name(vm_lab, 'fips')}]"]
    assert fips.outcome == "failed"
    assert "expected an active fips or symcrypt provider, found default" in _text(fips)


# --- SELinux suite ------------------------------------------------------------------------

def test_mode_reader_on_real_selinuxfs_output(vm_hosts: dict[str, Host]) -> None:
    """selinuxfs prints "1" without a newline: the mode is read right all the same."""
    for variant, mode in (("selinux-enforcing", "enforcing"), ("selinux-permissive", "permissive")):
        state = read_mode(vm_hosts[variant])
        assert (state.runtime, state.getenforce, state.config, state.cmdline) == (
            mode, mode, mode, mode), state.describe()


SELINUX_VMS = ["selinux-enforcing", "selinux-permissive", "fips", "verity"]
AGETTY_HINT = "allow getty_t self:capability2 { checkpoint_restore };"
# What Debian's userland is denied while it boots, before auditd starts: only in the kernel
# log and the journal (tests/data/selinux/README.md has a recording of one such boot).
BOOT_HINTS = [
    "allow systemd_tmpfiles_t etc_t:lnk_file { relabelfrom };",
    "allow udev_t self:process { setrlimit };",
]


def test_selinux_suite_on_the_vms_boot_window(pytester: pytest.Pytester, vm_lab: VmLab) -> None:
    """Mode passes on every VM; since boot, the Debian userland's denials are there: agetty's
    from the audit log, and those from before auditd started from the kernel log (merged in,
    one record per event); with them allowlisted the check passes."""
    _copy(pytester, "security/test_selinux.py")
    written = _vm_target(vm_lab)["suites"]["selinux"]
    assert written["allowlist"][0]["comm"] == "agetty"
    assert all(e["reason"] for e in written["allowlist"])
    variants = [*SELINUX_VMS, "apparmor"]

    # without the allowlist: the boot-time denials are reported, blocked where enforcing
    bare = {"selinux": {"allowlist": WORKLOAD_ALLOW, "top": 50}}  # every group in the message
    targets = _write_targets(pytester, vm_lab, variants, suites=bare)
    _, cases = _run(pytester, targets, "-k", "denials")
    for variant in SELINUX_VMS:
        case = cases[f"test_no_unexplained_denials[{_vm_name(vm_lab, variant)}]"]
        text = _text(case)
        assert case.outcome == "failed" and AGETTY_HINT in text, text
        assert "since boot (source ausearch" in text
        assert "with this boot's kernel log (journalctl -b, kernel and audit transports)" in text
        assert all(hint in text for hint in BOOT_HINTS), text
        flag = "[blocked]" if variant == "selinux-enforcing" else "[permissive]"
        assert f"getty_t -> getty_t:capability2 {{ checkpoint_restore }} {flag}" in text
        assert f"udev_t -> udev_t:process {{ setrlimit }} {flag}" in text

    # with them: mode passes everywhere, no unexplained denial, the boot records counted
    allow = {"selinux": {**written, "allowlist": [*written["allowlist"], *WORKLOAD_ALLOW]}}
    targets = _write_targets(pytester, vm_lab, variants, suites=allow)
    _, cases = _run(pytester, targets, "-k", "mode or denials")
    for variant in variants:
        case = cases[f"test_selinux_mode[{_vm_name(vm_lab, variant)}]"]
        assert case.outcome == "passed", _text(case)
    for variant in SELINUX_VMS:
        case = cases[f"test_no_unexplained_denials[{_vm_name(vm_lab, variant)}]"]
        assert case.outcome == "passed", _text(case)
        metrics = {m.name: m.value for m in case.metrics}
        assert metrics["selinux_denials"] >= 5 and metrics["selinux_denials_unexplained"] == 0
        used = {u["reason"]: u["records"]
                for u in json.loads(case.properties["azl.allowlist.used"])}
        udev = next(e for e in written["allowlist"] if e["stype"] == "udev_t")
        assert used[udev["reason"]] >= 1 and used[written["allowlist"][0]["reason"]] >= 1
    skipped = cases[f"test_no_unexplained_denials[{_vm_name(vm_lab, 'apparmor')}]"]
    assert skipped.outcome == "skipped" and "SELinux disabled" in _text(skipped)


def test_journal_and_audit_log_sources_judge_alike_on_the_vm(
    pytester: pytest.Pytester, vm_lab: VmLab, vm_hosts: dict[str, Host]
) -> None:
    """A real SELINUX_ERR (an invalid context written to /proc/self/attr/fscreate by a
    non-root shell) and the workload's denials, read through ausearch and through the journal:
    the same groups, the invalid context kept, and allowlist entries on exe and comm match
    under both sources (the journal's entries get exe and comm from the SYSCALL entry)."""
    host = vm_hosts["selinux-enforcing"]
    host.run("sh -c 'printf system_u:object_r:azl_no_such_t:s0 > /proc/self/attr/fscreate'",
             sudo=False)
    host.run(DENIAL, sudo=True)
    _copy(pytester, "security/test_selinux.py")
    by_exe = [{"exe": "/usr/bin/dash", "comm": "sh", "kind": "error", "reason": "this test"},
              {"exe": "/usr/bin/runcon", "comm": "runcon", "reason": "this test's workload"}]
    texts = {}
    for source in ("ausearch", "journal"):
        suites = {"selinux": {"source": source, "allowlist": by_exe}}  # the boot window
        targets = _write_targets(pytester, vm_lab, ["selinux-enforcing"], suites=suites)
        _, cases = _run(pytester, targets, "-k", "denials")
        (case,) = cases.values()
        texts[source] = _text(case)
        used = {u["entry"]: u["records"]
                for u in json.loads(case.properties["azl.allowlist.used"])}
        assert used.get(0, 0) >= 1 and used.get(1, 0) >= 1, (source, texts[source])
        assert "azl_no_such_t" not in texts[source]  # allowlisted by exe and comm
        assert "could not be checked" not in texts[source]
    # what stays unexplained (Debian's boot denials, agetty) is the same through both
    groups = {source: sorted(line.strip() for line in text.splitlines()
                             if line.strip().startswith("allow "))
              for source, text in texts.items()}
    assert groups["ausearch"] and groups["ausearch"] == groups["journal"], groups


def test_watcher_attributes_a_real_denial_to_the_test(
    pytester: pytest.Pytester, vm_lab: VmLab, vm_hosts: dict[str, Host]
) -> None:
    """The workload's denial lands on the test that ran it: permissive=0 where enforcing,
    permissive=1 where permissive; the test after it sees none."""
    # A permissive kernel logs a denial once, then caches it as allowed until the AVC is
    # flushed; the same workload ran earlier in this boot (test_vm_hosts.py). Reloading the
    # (same) policy flushes the AVC, as a boot would.
    vm_hosts["selinux-permissive"].run("load_policy", sudo=True, check=True)
    (pytester.path / "test_watch.py").write_text(WATCH_TESTS)
    targets = _write_targets(pytester, vm_lab, ["selinux-enforcing", "selinux-permissive"])
    result, cases = _run(pytester, targets, "test_watch.py")
    enf, perm = _vm_name(vm_lab, "selinux-enforcing"), _vm_name(vm_lab, "selinux-permissive")

    case = cases[f"test_workload[{enf}]"]
    text = _text(case)
    assert case.outcome == "failed", text
    assert "SelinuxDenialsFound" in text and "since start of test_workload" in text
    assert case.properties["selinux.permissive"] == "0"
    groups = case.properties["selinux.denial_groups"]
    assert "comm=runcon" in groups and "unconfined_t -> httpd_t:process { transition } [blocked]" \
        in groups, groups
    assert "allow unconfined_t httpd_t:process { transition };" in text
    assert int(case.properties["selinux.denials"]) >= 1

    case = cases[f"test_workload[{perm}]"]
    text = _text(case)
    assert case.outcome == "failed" and "since start of test_workload" in text, text
    assert case.properties["selinux.permissive"] == "1"
    groups = case.properties["selinux.denial_groups"]
    assert "comm=cat" in groups and "httpd_t -> shadow_t:file" in groups, groups
    assert "[blocked]" not in groups and "[permissive]" in groups

    for host in (enf, perm):  # the next test's window starts after the workload
        quiet = cases[f"test_quiet[{host}]"]
        assert quiet.outcome == "passed", _text(quiet)
        assert quiet.properties["selinux.denials"] == "0"
    result.stdout.fnmatch_lines(["*Captured selinux call*", "*(ausearch), permissive=*"])


AUDITD_TESTS = f'''
import pytest

DENIAL = {DENIAL!r}
# the lab image's auditd.service may be stopped (a signal from auditctl would be denied)
STOP = "systemctl stop auditd"


@pytest.mark.azl_selinux_watch(mode="fail")
def test_a_auditd_stops_then_a_denial(azl_host):
    azl_host.run(STOP, sudo=True, check=True)
    azl_host.run(DENIAL, sudo=True)


@pytest.mark.azl_selinux_watch(mode="fail")
def test_b_auditd_restarts_around_a_denial(azl_host):
    azl_host.run(DENIAL, sudo=True)  # auditd is still stopped
    azl_host.run("systemctl start auditd", sudo=True, check=True)
'''


def _start_auditd(host: Host) -> None:
    host.run("systemctl start auditd && for i in $(seq 50); do "
             "[ \"$(auditctl -s | awk '$1 == \"pid\" {{ print $2 }}')\" != 0 ] && exit 0; "
             "sleep 0.2; done; exit 1", sudo=True, check=True)


def test_stopped_auditd_is_never_a_quiet_host(
    pytester: pytest.Pytester, vm_lab: VmLab, vm_hosts: dict[str, Host]
) -> None:
    """auditd stopped with its log left in place (issue 28 #14): the kernel logs the AVC to
    the kernel log, not the audit log. The watcher (auditd dies inside the test's window,
    then is restarted inside the next one) and the ``run`` window read the kernel log too,
    say why, and fail on the denial instead of passing with 0."""
    host = vm_hosts["selinux-enforcing"]
    (pytester.path / "test_auditd.py").write_text(AUDITD_TESTS)
    _copy(pytester, "security/test_selinux.py")
    written = _vm_target(vm_lab)["suites"]["selinux"]
    suites = {"selinux": {**written, "window": "run",
                          "allowlist": [e for e in written["allowlist"]
                                        if e.get("comm") != "runcon"]}}
    targets = _write_targets(pytester, vm_lab, ["selinux-enforcing"], suites=suites)
    try:
        _, cases = _run(pytester, targets, "test_auditd.py", "security/test_selinux.py",
                        "-k", "auditd or denials")
    finally:
        _start_auditd(host)  # the VM is the session's: auditd runs again for the next test
    enf = _vm_name(vm_lab, "selinux-enforcing")
    transition = "allow unconfined_t httpd_t:process { transition };"
    stopped = "auditd is not running (systemctl is-active auditd: inactive)"
    case = cases[f"test_a_auditd_stops_then_a_denial[{enf}]"]
    text = _text(case)
    assert case.outcome == "failed" and "SelinuxDenialsFound" in text, text
    assert transition in text and stopped in text, text
    assert "with this boot's kernel log (journalctl -b, kernel and audit transports)" in text
    case = cases[f"test_b_auditd_restarts_around_a_denial[{enf}]"]
    text = _text(case)
    assert case.outcome == "failed" and transition in text, text
    assert "started after the window began" in text, text  # live again, but not all along
    case = cases[f"test_no_unexplained_denials[{enf}]"]
    text = _text(case)
    assert case.outcome == "failed" and "since run start" in text and transition in text, text
    assert "started after the window began" in text, text
    assert host.check_output("systemctl is-active auditd").strip() == "active"


# --- escape probe -------------------------------------------------------------------------


def test_escape_probe_reports_the_container_label_on_selinux_enforcing(
    pytester: pytest.Pytester, vm_lab: VmLab, vm_hosts: dict[str, Host]
) -> None:
    """runc on the enforcing VM starts the container in the domain it is started from (sudo
    from an unconfined login: unconfined_t); the probe inside reads and reports it."""
    _copy(pytester, "security/test_escape.py")
    suites = {"escape": {"profiles": ["restricted"]}}
    targets = _write_targets(pytester, vm_lab, ["selinux-enforcing"], suites=suites)
    result, cases = _run(pytester, targets, "-rP")
    (case,) = [c for name, c in cases.items() if name.endswith("-restricted]")]
    assert case.outcome == "passed", _text(case)
    assert case.properties["escape.lsm.label"] == "warn"
    host = vm_hosts["selinux-enforcing"]
    assert host.check_output("getenforce").strip() == "Enforcing"
    label = host.check_output("id -Z", sudo=True).strip()  # the domain runc is started from
    assert label.split(":")[2] == "unconfined_t", label
    result.stdout.fnmatch_lines([f"*WARN*lsm.label: unconfined: {label}*"])
