"""Every control's check on recorded real outputs, and each check kind both ways.

The recordings (tests/data/hardening, provenance in its README) are what real hosts printed
for the suite's one gathering command. ``expected.yaml`` holds the reviewed verdict of every
control on every recording; the variations below start from those real outputs and change
one value, so each check is seen passing and failing on the same real text.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from pytest_azlinux.hardening import Evidence, load_controls
from pytest_azlinux.hardening.base import Compare, Verdict
from pytest_azlinux.hardening.baseline import plan_for
from pytest_azlinux.hardening.checks.accounts import PASSWD
from pytest_azlinux.hardening.fixtures import failure_message
from pytest_azlinux.hardening.readplan import ReadPlan, SectionRead, gather_script
from tests.data.hardening.verdicts import EXPECTED, HERE, evidence, recordings, verdicts

AZL = HERE / "azurelinux"
EXPECTED_TABLE: dict[str, dict[str, str]] = yaml.safe_load(EXPECTED.read_text())
CASES = [(name, cid) for name in recordings() for cid in EXPECTED_TABLE.get(name, {})]


def judge(control_id: str, ev: Evidence) -> Verdict:
    return load_controls().get(control_id).check.judge(ev)


def changed(name: str, section: str, old: str, new: str) -> Evidence:
    """Recording ``name`` with one substitution in one section (``old`` must be there)."""
    ev = evidence(name)
    text = ev.sections[section]
    assert old in text, f"{old!r} not in {name}:{section}"
    sections = dict(ev.sections)
    sections[section] = text.replace(old, new)
    return Evidence(name, sections, ev.facts)


def with_sections(name: str, sections: dict[str, str]) -> Evidence:
    """Recording ``name`` with whole sections replaced or added."""
    ev = evidence(name)
    return Evidence(name, {**ev.sections, **sections}, ev.facts)


# --- the reviewed table -----------------------------------------------------------------------


def test_every_recording_and_control_is_in_the_reviewed_table() -> None:
    assert set(EXPECTED_TABLE) == set(recordings())
    ids = {c.id for c in load_controls()}
    for name, rows in EXPECTED_TABLE.items():
        assert set(rows) == ids, f"{name}: re-run python3 -m tests.data.hardening.verdicts"


@pytest.mark.parametrize(("recording", "control_id"), CASES, ids=[f"{r}-{c}" for r, c in CASES])
def test_verdict_on_recorded_output(recording: str, control_id: str) -> None:
    verdict = verdicts(recording)[control_id]
    assert f"{verdict.outcome}: {verdict.found}" == EXPECTED_TABLE[recording][control_id]


def test_every_control_is_judged_on_some_real_output() -> None:
    """No control is only ever 'could not read': each one decided on a real host's text."""
    decided = {
        cid for name in recordings() for cid, v in verdicts(name).items()
        if v.outcome in ("passed", "failed", "not_applicable")
    }  # fmt: skip
    assert decided == {c.id for c in load_controls()} - {"AZL-PKG-001", "AZL-PKG-002",
                                                         "AZL-PKG-003"}  # fmt: skip
    # the package controls: judged on Azure Linux's real files below (no RPM host here)


def test_recordings_hold_no_secrets() -> None:
    for path in HERE.glob("*.txt"):
        text = path.read_text()
        assert not re.search(r"\$(1|2[aby]|5|6|y|gy|7)\$", text), path  # crypt(3) hashes
        assert "PRIVATE KEY" not in text, path


# --- Azure Linux 3.0's own files -------------------------------------------------------------

AZL_SSHD = {
    "AZL-SSH-001": "passed", "AZL-SSH-005": "passed", "AZL-SSH-006": "passed",
    "AZL-SSH-007": "failed", "AZL-SSH-008": "passed", "AZL-SSH-009": "passed",
    "AZL-SSH-010": "passed", "AZL-SSH-011": "failed", "AZL-SSH-013": "passed",
    "AZL-SSH-014": "passed", "AZL-SSH-015": "passed", "AZL-SSH-016": "passed",
    "AZL-SSH-017": "passed", "AZL-SSH-018": "passed", "AZL-SSH-019": "failed",
}  # fmt: skip


def azl_sshd() -> Evidence:
    text = (AZL / "sshd-T.txt").read_text()
    return Evidence("azl3", {"sshd": text, "rc:sshd": "0", "sshd.config": "/etc/ssh/sshd_config"})


@pytest.mark.parametrize(("control_id", "outcome"), sorted(AZL_SSHD.items()))
def test_azure_linux_shipped_sshd_config(control_id: str, outcome: str) -> None:
    """sshd -T on Azure Linux 3.0's sshd_config (OpenSSH 9.8p1 + SPECS/openssh edits)."""
    assert judge(control_id, azl_sshd()).outcome == outcome


def test_azure_linux_sshd_findings_say_what_was_found() -> None:
    found = judge("AZL-SSH-007", azl_sshd()).found
    assert found == "maxauthtries 6 (sshd -T -f /etc/ssh/sshd_config)"
    assert judge("AZL-SSH-011", azl_sshd()).found.startswith("maxstartups 10:30:100")
    assert judge("AZL-SSH-010", azl_sshd()).found.startswith("clientalivecountmax 3")


def azl_packages(changes: dict[str, tuple[str, str]] | None = None) -> Evidence:
    """The pkgconf section Azure Linux's files give, with ``{file: (old, new)}`` applied."""
    parts = []
    files = ["tdnf.conf", "azurelinux-official-base.repo", "azurelinux-ms-oss.repo",
             "azurelinux-extended.repo"]  # fmt: skip
    for name in files:
        path = "/etc/tdnf/tdnf.conf" if name == "tdnf.conf" else f"/etc/yum.repos.d/{name}"
        text = (AZL / name).read_text()
        if changes and name in changes:
            old, new = changes[name]
            assert old in text
            text = text.replace(old, new, 1)
        parts.append(f"# file {path}\n{text}")
    return Evidence("azl3", {"pkgconf": "\n".join(parts)})


def test_azure_linux_repositories_check_signatures() -> None:
    ev = azl_packages()
    assert judge("AZL-PKG-001", ev) == Verdict(
        "passed", "/etc/tdnf/tdnf.conf: gpgcheck=1",
        "`gpgcheck=1` in `[main]` of every package tool's configuration",
    )
    assert judge("AZL-PKG-002", ev).found == "3 enabled repositories, none with gpgcheck=0"
    assert judge("AZL-PKG-003", ev).found == "3 enabled repositories, all with repo_gpgcheck=1"


def test_a_repository_or_main_without_signatures_fails() -> None:
    ev = azl_packages({"azurelinux-ms-oss.repo": ("gpgcheck=1", "gpgcheck=0")})
    verdict = judge("AZL-PKG-002", ev)
    assert verdict.outcome == "failed"
    assert verdict.found == (
        "azurelinux-official-ms-oss (/etc/yum.repos.d/azurelinux-ms-oss.repo): gpgcheck=0"
    )
    ev = azl_packages({"tdnf.conf": ("gpgcheck=1", "gpgcheck=0")})
    assert judge("AZL-PKG-001", ev).found == "/etc/tdnf/tdnf.conf: gpgcheck=0"
    ev = azl_packages({"azurelinux-official-base.repo": ("repo_gpgcheck=1\n", "")})
    assert judge("AZL-PKG-003", ev).outcome == "failed"
    assert judge("AZL-PKG-002", ev).outcome == "passed"  # gpgcheck itself still on


# --- each kind both ways, starting from real text -----------------------------------------------


def test_sshd_values_decide_and_a_failing_sshd_t_is_an_error() -> None:
    bad = changed("lab-azl3", "sshd", "permitrootlogin no", "permitrootlogin yes")
    assert judge("AZL-SSH-001", bad).outcome == "failed"
    assert judge("AZL-SSH-001", bad).found.startswith("permitrootlogin yes")
    weak = changed("lab-azl3", "sshd", "ciphers chacha20", "ciphers aes128-cbc,3des-cbc,chacha20")
    assert judge("AZL-SSH-015", weak).found.startswith(
        "ciphers aes128-cbc,3des-cbc,chacha20-poly1305@openssh.com")
    assert "aes128-cbc, 3des-cbc not allowed" in judge("AZL-SSH-015", weak).found
    broken = with_sections("lab-azl3", {
        "sshd": "/etc/ssh/sshd_config: No such file or directory", "rc:sshd": "255"})
    assert judge("AZL-SSH-001", broken).outcome == "unavailable"
    assert judge("AZL-SSH-001", broken).found == (
        "sshd -T failed: /etc/ssh/sshd_config: No such file or directory")


def test_sysctl_values_and_absent_keys() -> None:
    weak = changed("lab-azl3", "sysctl", "randomize_va_space:2", "randomize_va_space:1")
    assert judge("AZL-KRN-001", weak) == Verdict(
        "failed", "kernel.randomize_va_space = 1", "`kernel.randomize_va_space` 2")
    gone = changed("lab-azl3", "sysctl", "/proc/sys/kernel/dmesg_restrict:1\n", "")
    assert judge("AZL-KRN-003", gone).found == "/proc/sys/kernel/dmesg_restrict does not exist"
    assert judge("AZL-KRN-003", gone).outcome == "failed"
    no_v6 = with_sections("lab-azl3", {"sysctl": "\n".join(
        ln for ln in evidence("lab-azl3").sections["sysctl"].splitlines() if "/ipv6/" not in ln)})
    assert judge("AZL-NET-002", no_v6).outcome == "not_applicable"
    assert judge("AZL-NET-002", no_v6).found.endswith("IPv6 is disabled")


@pytest.mark.parametrize(
    ("modprobe", "rc", "extra", "outcome", "found"),
    [
        ("install /bin/false ", "0", {}, "passed", "modprobe cramfs: install /bin/false"),
        ("insmod /lib/modules/6.1.0-41-amd64/kernel/fs/cramfs/cramfs.ko ", "0", {}, "failed",
         "cramfs is loadable: modprobe would run insmod /lib/modules/6.1.0-41-amd64/kernel/fs/"
         "cramfs/cramfs.ko"),
        ("install /bin/false ", "0", {"modules.loaded": "cramfs 20480 0 - Live 0x0000000000000000"},
         "failed", "cramfs is loaded (/proc/modules)"),
        ("", "0", {"modules.loaded": "ext4 1 0 - Live 0x0",
                   "modules.builtin": "kernel/fs/cramfs/cramfs.ko"}, "failed",
         "cramfs is built into the kernel (modules.builtin): modprobe settings cannot keep it out"),
        ("modprobe: FATAL: Module cramfs not found in directory /lib/modules/6.6.104.2-4.azl3",
         "1", {"modules.loaded": "ext4 1 0 - Live 0x0"}, "passed",
         "cramfs is not in this kernel: no module file, not built in"),
    ],
)
def test_module_states(
    modprobe: str, rc: str, extra: dict[str, str], outcome: str, found: str
) -> None:
    sections = {"module:cramfs": modprobe, "rc:module:cramfs": rc, **extra}
    ev = with_sections("lab-azl3", sections)
    assert (judge("AZL-MOD-001", ev).outcome, judge("AZL-MOD-001", ev).found) == (outcome, found)


def test_a_filesystem_in_proc_filesystems_is_in_the_kernel() -> None:
    ev = with_sections("lab-azl3", {
        "filesystems": evidence("lab-azl3").sections["filesystems"] + "\n\tudf"})
    assert judge("AZL-MOD-006", ev).found == "udf is in the running kernel (/proc/filesystems)"


def test_mount_options_of_the_mount_holding_the_path() -> None:
    hardened_tmp = "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0"
    ev = with_sections("lab-azl3", {
        "mounts": evidence("lab-azl3").sections["mounts"] + "\n" + hardened_tmp})
    for cid in ("AZL-MNT-001", "AZL-MNT-002", "AZL-MNT-003", "AZL-MNT-004"):
        assert judge(cid, ev).outcome == "passed", cid  # the last mount on /tmp wins
    assert judge("AZL-MNT-004", evidence("lab-azl3")).found.endswith("missing noexec")
    # a path inside a mount takes that mount's options
    assert judge("AZL-MNT-011", ev).found.startswith("/home is on /home ")


def test_file_modes_and_owners() -> None:
    bad = changed("lab-azl3", "stat", "/etc/passwd|644|root|root", "/etc/passwd|664|root|adm")
    assert judge("AZL-FILE-001", bad).found == "/etc/passwd 0664 root:adm"
    assert judge("AZL-FILE-001", bad).outcome == "failed"
    good = changed("lab-azl3", "stat", "/etc/shadow|640|root|shadow", "/etc/shadow|0|root|root")
    assert judge("AZL-FILE-002", good) == Verdict(
        "passed", "/etc/shadow 0000 root:root",
        "/etc/shadow: mode 0000 or stricter, owner root, group root")
    setuid = changed("lab-azl3", "stat", "/etc/passwd|644|", "/etc/passwd|4644|")
    assert judge("AZL-FILE-001", setuid).outcome == "failed"  # special bits count


def test_accounts_rules() -> None:
    empty = changed("lab-azl3", "shadow", "azureuser:LOCKED:", "azureuser:EMPTY:")
    assert judge("AZL-ACC-001", empty).found == "empty password: azureuser"
    second_root = changed("lab-azl3", "passwd", "azureuser:x:",
                          "toor:x:0:0::/root:/bin/sh\nazureuser:x:")
    assert judge("AZL-ACC-003", second_root).found == "UID 0: root, toor"
    assert judge("AZL-ACC-005", second_root).found == "shared uids: 0"
    no_passwords = changed("lab-azl3", "shadow", "azltestpw:HASH:", "azltestpw:LOCKED:")
    assert judge("AZL-ACC-008", no_passwords).outcome == "not_applicable"
    aged = changed("lab-azl3", "shadow", "azltestpw:HASH:20787:0:99999:",
                   "azltestpw:HASH:20787:1:90:")
    assert judge("AZL-ACC-008", aged) == Verdict(
        "passed", "every account with a password (1) within 365 days",
        "every account with a password must change it within 365 days")
    assert judge("AZL-ACC-008", evidence("lab-azl3")).found == (
        "maximum age over 365 days: azltestpw (never)")


def test_umask_and_login_defs() -> None:
    assert judge("AZL-ACC-012", evidence("lab-azl3")).found == "UMASK 022"
    strict = changed("lab-azl3", "login.defs", "UMASK\t\t022", "UMASK\t\t077")
    assert judge("AZL-ACC-012", strict).outcome == "passed"  # 077 masks more than 027


def test_sudoers_rules() -> None:
    off = changed("lab-azl3", "sudoers", "Defaults\tuse_pty", "Defaults\t!use_pty")
    assert judge("AZL-ACC-014", off).outcome == "failed"
    assert judge("AZL-ACC-016", evidence("lab-azl3")).found == (
        "grants: azureuser ALL=(ALL) NOPASSWD:ALL")


def test_audit_rules_in_both_spellings() -> None:
    rules = "\n".join([
        "-w /etc/passwd -p wa -k identity",
        "-a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change",
        "-a always,exit -F arch=b64 -S clock_settime -F key=time-change",
        "-a always,exit -F arch=b32 -S init_module -F key=modules",
        "-a always,exit -F path=/etc/group -F perm=wa -F key=identity",
    ])  # fmt: skip
    ev = Evidence("x", {"audit.rules": rules, "rc:audit.rules": "0"})
    assert judge("AZL-AUD-005", ev).outcome == "passed"
    assert judge("AZL-AUD-007", ev).found == (
        "5 rules loaded; missing init_module, finit_module, delete_module")  # b32 only
    assert judge("AZL-AUD-003", ev).found == "5 rules loaded; missing /etc/shadow (wa), " \
        "/etc/gshadow (wa), /etc/security/opasswd (wa)"
    missing = Evidence("x", {"audit.rules": "sh: 1: auditctl: not found", "rc:audit.rules": "127"})
    assert judge("AZL-AUD-003", missing).outcome == "failed"
    assert judge("AZL-AUD-003", evidence("lab-azl3")).outcome == "unavailable"  # other netns


def test_services_with_and_without_systemd() -> None:
    assert judge("AZL-TIME-001", evidence("lab-azl3")).found == (
        "systemd is not running; processes: none of chronyd, systemd-timesyn, ntpd")
    units = "auditd active enabled\nchronyd inactive disabled\nsystem running"
    ev = with_sections("lab-azl3", {"units": units})
    assert judge("AZL-AUD-001", ev) == Verdict("passed", "auditd active", "one of auditd running")
    assert judge("AZL-TIME-001", ev).found.startswith("chronyd inactive")


def test_world_writable_scan() -> None:
    scan = "dir /var/cache/shared\nfile /etc/app.conf\ntotal dir 1\ntotal file 1"
    ev = with_sections("lab-azl3", {"scan": scan})
    assert judge("AZL-FILE-016", ev).found == "1 found: /var/cache/shared"
    assert judge("AZL-FILE-017", ev).found == "1 found: /etc/app.conf"
    cut = with_sections("lab-azl3", {"scan": "dir /var/x"})  # no totals: the read was cut
    assert judge("AZL-FILE-016", cut).outcome == "unavailable"
    late = with_sections("lab-azl3", {"scan": "dir /var/x\nexit 124\ntotal dir 1\ntotal file 0"})
    assert judge("AZL-FILE-016", late) == Verdict(
        "unavailable", "the file system scan did not finish (time limit 30 s)",
        "no world-writable directories without the sticky bit")


# --- comparisons, the script, the message -------------------------------------------------------


@pytest.mark.parametrize(
    ("compare", "value", "ok"),
    [
        (Compare(one_of=["no"]), "No", True),
        (Compare(at_least=1, at_most=3), "0", False),
        (Compare(at_least=1, at_most=3), "3", True),
        (Compare(at_most=4), "six", False),
        (Compare(none_of=["*-cbc"]), "aes128-ctr,aes256-cbc", False),
        (Compare(fields_at_most=[10, 30, 60]), "10:30:100", False),
        (Compare(fields_at_most=[10, 30, 60]), "5:30:60", True),
        (Compare(fields_at_most=[10, 30, 60]), "10", False),
        (Compare(mask_covers="027"), "022", False),
        (Compare(mask_covers="027"), "0077", True),
    ],
)
def test_compare(compare: Compare, value: str, ok: bool) -> None:
    assert compare.matches(value) is ok


def test_the_gathering_script_is_valid_sh_and_reads_only_what_is_planned() -> None:
    script = gather_script(plan_for(load_controls()))
    subprocess.run(["sh", "-n", "-c", script], check=True)
    one = load_controls().get("AZL-KRN-003")
    plan = plan_for([one])
    small = gather_script(plan)
    assert plan.section_names() == ["sysctl"]
    assert "/proc/sys/kernel/dmesg_restrict" in small
    assert "find " not in small and "sshd" not in small and "/etc/shadow" not in small


def test_a_plan_refuses_two_reads_of_one_name() -> None:
    plan = ReadPlan()
    plan.need(PASSWD, PASSWD)  # the same read twice is one read
    with pytest.raises(ValueError, match="two reads named 'passwd'"):
        plan.need(SectionRead("passwd", "cat /etc/passwd-", str))


def test_failure_message_says_found_expected_remediation() -> None:
    control = load_controls().get("AZL-SSH-007")
    verdict = judge("AZL-SSH-007", azl_sshd())
    text = failure_message(control, verdict.found, verdict.expected)
    assert text.splitlines() == [
        "AZL-SSH-007: found maxauthtries 6 (sshd -T -f /etc/ssh/sshd_config); expected "
        "`maxauthtries` at most 4",
        "  control:     At most 4 authentication attempts per connection [medium, level 1]",
        "  remediation: `MaxAuthTries 4` in /etc/ssh/sshd_config",
        "  references:  sshd_set_max_auth_tries (CCE-90810-3)",
    ]


def test_recordings_parse_with_the_section_names_of_the_plan() -> None:
    names = set(plan_for(load_controls()).section_names())
    for name in recordings():
        assert set(evidence(name).sections) <= names | {"rc:sshd"}, name


def test_readme_names_every_recording() -> None:
    readme = (HERE / "README.md").read_text()
    for name in recordings():
        assert f"`{name}`" in readme, name




# --- the hardened VM against its unhardened twin --------------------------------------------------


def test_the_hardening_recipe_shows_in_the_vm_recordings() -> None:
    """vm-hardened is vm-default plus lab/vm_variants.py HARDENING_FILES (and audit=1 ...)."""
    default, hardened = verdicts("vm-default"), verdicts("vm-hardened")
    fixed = sorted(c for c in default if default[c].outcome == "failed"
                   and hardened[c].outcome == "passed")  # fmt: skip
    broken = sorted(c for c in default if default[c].outcome == "passed"
                    and hardened[c].outcome != "passed")  # fmt: skip
    assert broken == []
    assert len(fixed) >= 60
    for area in ("SSH", "NET", "KRN", "MOD", "MNT", "FILE", "ACC", "AUD"):
        assert any(c.startswith(f"AZL-{area}-") for c in fixed), area
    # what the recipe leaves alone fails on both: no time daemon in the image, a NOPASSWD
    # rule for the lab's user, /home on the root filesystem, no FIPS
    still = sorted(c for c in hardened if hardened[c].outcome == "failed")
    assert still == ["AZL-ACC-016", "AZL-CRY-001", "AZL-CRY-002", "AZL-MNT-011", "AZL-TIME-001",
                     "AZL-TIME-002"]  # fmt: skip
