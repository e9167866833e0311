"""The AVC parser on real recorded audit logs (tests/data/selinux, see its README).

Counts are checked against the README figures and, where ``ausearch`` is installed, against
``ausearch`` run on the same file. The single-line shapes (syslog, journal, kernel log) are
written in the formats listed in the SELinux reference note.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_azlinux.analyse.avc import (
    AvcRecord,
    Context,
    dedupe,
    line_time,
    merge_sources,
    parse_journal_json,
    parse_records,
)
from pytest_azlinux.analyse.avc_groups import DenialGroup, count_types, format_groups, group_denials
from pytest_azlinux.errors import SettingsError
from pytest_azlinux.selinux.allowlist import AllowEntry, apply_allowlist
from pytest_azlinux.selinux.containers import (
    container_processes,
    parse_ps,
    wrong_domains,
)
from pytest_azlinux.selinux.mode import Mode, SelinuxState, mode_problems, selinux_state
from pytest_azlinux.selinux.settings import SelinuxSettings
from pytest_azlinux.settings import parse

Parsed = dict[str, list[AvcRecord]]
DATA = Path(__file__).parent.parent / "data" / "selinux"

# file -> (AVC records, AVC denials, USER_AVC records, USER_AVC denials, SELINUX_ERR)
EXPECTED = {
    "sepolgen_httpd.log": (3529, 3529, 3336, 3335, 119),
    "sepolgen_audit.log": (1805, 1805, 10, 10, 0),
    "sepolgen_short.log": (6, 6, 0, 0, 0),
    "audit2allow_test.log": (17, 17, 0, 0, 0),
    "sepolgen_modern_permissive0.log": (4, 4, 0, 0, 0),
}


@pytest.fixture(scope="module")
def parsed() -> Parsed:
    return {name: parse_records((DATA / name).read_text()) for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_counts_match_readme(parsed: Parsed, name: str) -> None:
    counts = count_types(parsed[name])
    avc, avc_denied, user, user_denied, err = EXPECTED[name]
    assert counts.get("AVC", 0) == avc
    assert counts.get("AVC:denied", 0) == avc_denied
    assert counts.get("USER_AVC", 0) == user
    assert counts.get("USER_AVC:denied", 0) == user_denied
    assert counts.get("SELINUX_ERR", 0) == err


def _ausearch_count(path: Path, rtype: str) -> int:
    """The README's command: records ausearch returns for ``-m TYPE``, counted by line."""
    proc = subprocess.run(
        ["ausearch", "--input-logs", "-if", str(path), "-m", rtype, "--raw"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1 = no match
    return sum(1 for line in proc.stdout.splitlines() if line.startswith(f"type={rtype} msg"))


@pytest.mark.skipif(shutil.which("ausearch") is None, reason="ausearch (auditd) not installed")
@pytest.mark.parametrize(
    "name",
    ["sepolgen_httpd.log", "sepolgen_audit.log", "sepolgen_short.log",
     "sepolgen_modern_permissive0.log"],
)
def test_counts_match_real_ausearch(parsed: Parsed, name: str) -> None:
    counts = count_types(parsed[name])
    for rtype in ("AVC", "USER_AVC", "SELINUX_ERR"):
        assert counts.get(rtype, 0) == _ausearch_count(DATA / name, rtype), rtype


@pytest.mark.skipif(shutil.which("ausearch") is None, reason="ausearch (auditd) not installed")
def test_mixed_shapes_beyond_ausearch(parsed: Parsed) -> None:
    # The README: Debian's ausearch counts 1 of the 17 (only the unprefixed one)
    assert _ausearch_count(DATA / "audit2allow_test.log", "AVC") == 1
    records = parsed["audit2allow_test.log"]
    assert len(records) == 17
    assert {r.node for r in records} >= {"bob.example.com", "dhcppc2", "mallorn.farre.nom", None}


def test_modern_records_keep_permissive_and_serial(parsed: Parsed) -> None:
    records = parsed["sepolgen_modern_permissive0.log"]
    assert [r.permissive for r in records] == [False] * 4
    assert {r.serial for r in records} == {4461}
    assert records[0].timestamp == pytest.approx(1516626657.910)
    assert [r.fields.get("ioctlcmd") for r in records] == ["0x42", "0x1234", "0xdead", None]
    r = records[0]
    assert r.scontext == Context("unconfined_u", "unconfined_r", "unconfined_t", "s0-s0:c0.c1023")
    assert r.tcontext == Context("unconfined_u", "object_r", "test_file_t", "s0")
    assert (r.tclass, r.perms, r.comm, r.path) == ("file", ("ioctl",), "test", "/root/test")


def test_old_records_have_no_permissive(parsed: Parsed) -> None:
    assert {r.permissive for r in parsed["sepolgen_audit.log"]} == {None}


def test_single_space_and_reordered_fields(parsed: Parsed) -> None:
    # "avc: denied { write } for comm=local ... tclass=file tcontext=..."
    first = parsed["audit2allow_test.log"][0]
    assert (first.stype, first.ttype, first.tclass, first.perms) == (
        "postfix_local_t", "mail_spool_t", "file", ("write",))
    assert (first.comm, first.name, first.pid, first.serial) == ("local", "root.lock", 10581, 1129)


def test_two_records_on_one_line(parsed: Parsed) -> None:
    # "host=dhcppc2 type=AVC ... host=dhcppc2 type=SYSCALL ..." on one line: SYSCALL gives exe
    qemu = next(r for r in parsed["audit2allow_test.log"] if r.node == "dhcppc2")
    assert qemu.tclass == "blk_file" and qemu.exe == "/usr/bin/qemu-kvm"
    assert "SYSCALL" not in qemu.text


def test_exe_from_syscall_record(parsed: Parsed) -> None:
    short = parsed["sepolgen_short.log"]
    assert short[0].exe == "/sbin/pam_timestamp_check"
    assert short[-1].exe is None  # the su denial has no SYSCALL record


def test_user_avc(parsed: Parsed) -> None:
    user = [r for r in parsed["sepolgen_httpd.log"] if r.rtype == "USER_AVC"]
    notice = [r for r in user if not r.is_denial]
    assert len(notice) == 1 and "policyload notice" in notice[0].text
    d = user[0]
    assert (d.perms, d.tclass, d.exe, d.serial) == (("send_msg",), "dbus", "/bin/dbus-daemon", 8084)
    assert d.scontext is not None and d.scontext.type == "staff_t"
    assert d.fields["member"] == "DeviceActivationStage"


def test_selinux_err(parsed: Parsed) -> None:
    errs = [r for r in parsed["sepolgen_httpd.log"] if r.is_error]
    assert len(errs) == 119
    e = errs[0]
    assert e.error == "invalid context staff_u:staff_r:staff_userhelper_t:s0"
    assert (e.stype, e.ttype, e.tclass, e.verdict) == (
        "staff_t", "userhelper_exec_t", "process", None)


def test_grouping_and_hint(parsed: Parsed) -> None:
    groups = group_denials(parsed["sepolgen_httpd.log"])
    top = groups[0]
    assert (top.kind, top.stype, top.ttype, top.tclass, top.perms, top.count) == (
        "denial", "staff_t", "staff_t", "dbus", ("send_msg",), 3335)
    assert top.comm == "dbus-daemon"
    assert top.hint == "allow staff_t self:dbus { send_msg };"
    assert sum(g.count for g in groups) == 3529 + 3335 + 119
    counts = [g.count for g in groups]
    assert counts == sorted(counts, reverse=True)
    err = next(g for g in groups if g.kind == "error")
    assert err.hint.startswith("# SELINUX_ERR invalid context")
    modern = group_denials(parsed["sepolgen_modern_permissive0.log"])
    assert [(g.tclass, g.perms, g.count, g.blocked) for g in modern] == [
        ("file", ("ioctl",), 3, True), ("dir", ("getattr",), 1, True)]
    assert modern[0].hint == "allow unconfined_t test_file_t:file { ioctl };"
    text = format_groups(groups, limit=2)
    assert "3335 x denial" in text and "more groups" in text


def test_perms_are_grouped_order_insensitively() -> None:
    lines = [
        'type=AVC msg=audit(1.000:1): avc:  denied  { read write } for  pid=1 comm="a" '
        "scontext=u:r:a_t:s0 tcontext=u:object_r:b_t:s0 tclass=file permissive=1",
        'type=AVC msg=audit(2.000:2): avc:  denied  { write read } for  pid=1 comm="a" '
        "scontext=u:r:a_t:s0 tcontext=u:object_r:b_t:s0 tclass=file permissive=1",
    ]
    (g,) = group_denials(parse_records(lines))
    assert (g.count, g.perms, g.first, g.last, g.blocked) == (2, ("read", "write"), 1.0, 2.0, False)


# Shapes from the reference note, one line each.
SHAPES = {
    "syslog": 'Sep 12 08:26:43 web1 kernel: audit(1694507203.123:77): avc:  denied  { read } for '
    ' pid=812 comm="httpd" name="shadow" dev="sda1" ino=393 '
    "scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file",
    "kernel": "[  41.102] audit: type=1400 audit(1694507203.123:77): avc:  denied  { read } for "
    ' pid=812 comm="httpd" name="shadow" dev="sda1" ino=393 '
    "scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file "
    "permissive=1",
    "journal-kernel": "Sep 12 08:26:43 web1 kernel: audit: type=1400 audit(1694507203.123:77): avc:"
    '  denied  { read } for  pid=812 comm="httpd" name="shadow" '
    "scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file "
    "permissive=0",
    "journal-audit": 'Sep 12 08:26:43 web1 audit[812]: AVC avc:  denied  { read } for  pid=812 '
    'comm="httpd" name="shadow" scontext=system_u:system_r:httpd_t:s0 '
    "tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0",
    "journal-cat": 'AVC avc:  denied  { read } for  pid=812 comm="httpd" name="shadow" '
    "scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file "
    "permissive=0",
    "audisp-syslog": "Sep 12 08:26:43 web1 audisp-syslog[1745]: node=web1 type=AVC "
    'msg=audit(1694507203.123:77): avc:  denied  { read } for  pid=812 comm="httpd" '
    "name=\"shadow\" scontext=system_u:system_r:httpd_t:s0 "
    "tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0",
    "interpreted": "type=AVC msg=audit(09/12/2023 08:26:43.123:77) : avc:  denied  { read } for "
    " pid=812 comm=httpd name=shadow scontext=system_u:system_r:httpd_t:s0 "
    "tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0",
    "bare": 'avc:  denied  { read } for  pid=812 comm="httpd" name="shadow" '
    "scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file",
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape(shape: str) -> None:
    (r,) = parse_records(SHAPES[shape])
    assert (r.rtype, r.verdict, r.perms, r.stype, r.ttype, r.tclass, r.comm, r.name) == (
        "AVC", "denied", ("read",), "httpd_t", "shadow_t", "file", "httpd", "shadow")
    (g,) = group_denials([r])
    assert g.hint == "allow httpd_t shadow_t:file { read };"
    stamped = shape in ("syslog", "kernel", "journal-kernel", "audisp-syslog")
    assert r.timestamp == (pytest.approx(1694507203.123) if stamped else None)
    assert r.serial == (77 if stamped or shape == "interpreted" else None)
    assert r.node == ("web1" if shape == "audisp-syslog" else None)


def test_granted_is_not_a_denial() -> None:
    (r,) = parse_records(
        "type=AVC msg=audit(1.5:9): avc:  granted  { setenforce } for  pid=1 comm=\"setenforce\" "
        "scontext=u:r:sysadm_t:s0 tcontext=u:object_r:security_t:s0 tclass=security"
    )
    assert r.verdict == "granted" and not r.is_denial
    assert group_denials([r]) == []


def test_hex_encoded_comm_and_bounds_error() -> None:
    records = parse_records([
        "type=AVC msg=audit(1.5:9): avc:  denied  { open } for  pid=1 comm=6D7920617070 "
        "path=2F746D702F6120622F63 scontext=u:r:a_t:s0 tcontext=u:object_r:tmp_t:s0 tclass=file",
        "type=SELINUX_ERR msg=audit(1.6:10): op=security_compute_av reason=bounds "
        "scontext=u:r:child_t:s0 tcontext=u:object_r:etc_t:s0 tclass=file perms=read,open",
        "type=USER_SELINUX_ERR msg=audit(1.7:11): pid=5 uid=0 msg='op=setenforce lsm=selinux'",
    ])
    assert (records[0].comm, records[0].path) == ("my app", "/tmp/a b/c")
    err = records[1]
    assert err.perms == ("read", "open") and err.error == "op=security_compute_av reason=bounds"
    assert records[2].rtype == "USER_SELINUX_ERR" and records[2].is_error


def test_journal_json_fills_stamp_and_dedupes() -> None:
    # entries in the shape journald writes for the audit transport and for kernel messages
    # (the same record text in both, as journald keeps it: see the VM recordings below)
    audit_entry = {
        "MESSAGE": "AVC " + SHAPES["journal-kernel"].split("): ", 1)[1]
        .replace("permissive=0", "permissive=1"),
        "_TRANSPORT": "audit", "_AUDIT_ID": "77", "_AUDIT_TYPE_NAME": "AVC",
        "_SOURCE_REALTIME_TIMESTAMP": "1694507203123000",
    }
    kernel_entry = {"MESSAGE": SHAPES["journal-kernel"].split("kernel: ", 1)[1]
                    .replace("permissive=0", "permissive=1"), "_TRANSPORT": "kernel"}
    binary = {"MESSAGE": list(b"SELINUX_ERR op=security_compute_av reason=bounds "
                              b"scontext=a:r:x_t:s0 tcontext=b:r:y_t:s0 tclass=file perms=read"),
              "_AUDIT_ID": "78", "__REALTIME_TIMESTAMP": "1694507204000000"}
    text = "\n".join(json.dumps(e) for e in (audit_entry, kernel_entry, binary)) + "\nnot json\n"
    records = parse_journal_json(text)
    assert [(r.rtype, r.serial) for r in records] == [
        ("AVC", 77), ("AVC", 77), ("SELINUX_ERR", 78)]
    assert records[0].timestamp == pytest.approx(1694507203.123)
    assert records[2].timestamp == pytest.approx(1694507204.0)
    assert len(dedupe(records)) == 2


def test_context_parse() -> None:
    kernel = Context("system_u", "system_r", "kernel_t")
    assert Context.parse("system_u:system_r:kernel_t") == kernel
    assert Context.parse("kernel").type == "kernel"
    assert str(Context.parse("u:r:t:s0-s0:c0.c1023")) == "u:r:t:s0-s0:c0.c1023"


# --- mode, allowlist, container domains (pure parts of pytest_azlinux.selinux) -----------


# /etc/selinux/config as the Azure Linux selinux-policy %post leaves it
AZL_CONFIG = "# This file controls the state of SELinux\nSELINUX=permissive\nSELINUXTYPE=targeted\n"


def _mode(enforce: str | None, config: str, cmdline: str, getenforce: str = "") -> SelinuxState:
    return selinux_state(enforce, getenforce or None, config or None, cmdline.split())


def _problems(state: SelinuxState, expected: Mode | None, expected_from: str) -> list[str]:
    return [str(p) for p in mode_problems(state, expected, expected_from)]


def test_mode_permissive_agrees() -> None:
    r = _mode("0", AZL_CONFIG, "BOOT_IMAGE=/vmlinuz ro", "Permissive")
    assert (r.runtime, r.config, r.config_type, r.cmdline, r.configured) == (
        "permissive", "permissive", "targeted", None, "permissive")
    assert _problems(r, "permissive", "profile azl-3.0-fips") == []


def test_mode_selinux0_disables_and_mismatch_names_all_three() -> None:
    r = _mode(None, AZL_CONFIG, "ro selinux=0 console=ttyS0")
    assert (r.runtime, r.cmdline, r.configured) == ("disabled", "disabled", "disabled")
    assert _problems(r, "disabled", "profile azl-3.0") == []
    problems = _problems(r, "enforcing", "profile azl-3.0-baremetal")
    assert problems == ["expected enforcing (profile azl-3.0-baremetal), running disabled"]
    text = r.describe()
    assert "runtime=disabled" in text and "config=permissive" in text
    assert "cmdline=disabled (selinux=0)" in text


def test_mode_enforcing_cmdline_overrides_config_and_disagreement() -> None:
    r = _mode("0", AZL_CONFIG, "enforcing=1", "Permissive")
    assert r.configured == "enforcing"
    assert _problems(r, None, "") == [
        "config and cmdline imply enforcing but the running mode is permissive"]
    r = _mode(None, "", "ro")  # no config, no selinuxfs
    assert (r.config, r.configured, r.runtime) == (None, "disabled", "disabled")
    r = _mode(None, AZL_CONFIG, "security=apparmor")
    assert r.cmdline == "disabled"


TODAY = dt.date(2026, 6, 1)


def _entries(*raw: dict[str, object]) -> list[AllowEntry]:
    return list(parse(SelinuxSettings, {"allowlist": list(raw)}, "t").allowlist)


def test_allowlist_matching_and_errors() -> None:
    groups = group_denials(parse_records((DATA / "sepolgen_modern_permissive0.log").read_text()))
    entries = _entries({"stype": "unconfined_*", "tclass": "file", "perms": ["ioctl", "read"],
                        "reason": "test program"})
    verdict = apply_allowlist(groups, entries, TODAY)
    assert [g.tclass for g, _ in verdict.explained] == ["file"]
    assert [g.tclass for g in verdict.unexplained] == ["dir"]
    # perms must cover every perm of the group
    narrow = _entries({"perms": ["read"], "reason": "x"})
    assert len(apply_allowlist(groups, narrow, TODAY).unexplained) == 2
    with pytest.raises(SettingsError, match=r"field 'suites.selinux.allowlist\[0\].reason'"):
        _entries({"stype": "a_t"})
    with pytest.raises(SettingsError, match=r"allowlist\[1\].scontext': Extra inputs"):
        _entries({"reason": "ok"}, {"scontext": "a_t", "reason": "x"})
    with pytest.raises(SettingsError, match=r"allowlist\[0\].expires': not an ISO date"):
        _entries({"reason": "ok", "expires": "next year"})
    with pytest.raises(SettingsError, match=r"allowlist\[0\].tracker': must be a URL"):
        _entries({"reason": "ok", "tracker": "OPS-1"})


def test_allowlist_reports_entries_used_with_reasons_and_expired_ones() -> None:
    groups = group_denials(parse_records((DATA / "sepolgen_short.log").read_text()))
    entries = _entries(
        {"stype": "staff_t", "ttype": "user_tmp_t", "reason": "bonobo lock file",
         "expires": "2027-01-31", "tracker": "https://tracker.example/OPS-7", "owner": "desk"},
        {"stype": "pam_t", "reason": "old pam", "expires": "2026-06-01"},  # expired today
        {"comm": "nothing-matches", "reason": "stale"},
    )
    verdict = apply_allowlist(groups, entries, TODAY)
    assert [(u.index, u.groups, u.records) for u in verdict.used] == [(0, 2, 2)]
    assert [(u.index, u.groups, u.records) for u in verdict.expired] == [(1, 1, 1)]
    assert any(g.stype == "pam_t" for g in verdict.unexplained)  # expired: not applied
    lines = verdict.lines()
    assert lines[0] == ("allowlisted: allowlist[0] stype=staff_t ttype=user_tmp_t: 2 record(s) "
                        "in 2 group(s), until 2027-01-31: bonobo lock file "
                        "(https://tracker.example/OPS-7), owner desk")
    assert lines[1].startswith("EXPIRED, not applied: allowlist[1] stype=pam_t: 1 record(s)")
    assert json.loads(verdict.used_json()) == [{
        "entry": 0, "match": "stype=staff_t ttype=user_tmp_t", "groups": 2, "records": 2,
        "reason": "bonobo lock file", "expires": "2027-01-31",
        "tracker": "https://tracker.example/OPS-7", "owner": "desk"}]
    # the day before it expires, the second entry still applies
    assert [u.index for u in apply_allowlist(groups, entries, dt.date(2026, 5, 31)).used] == [0, 1]


def test_allowlist_says_which_fields_a_source_cannot_supply() -> None:
    # the su denial of short.log has no SYSCALL record: no exe to match an exe: entry against
    groups = group_denials(parse_records((DATA / "sepolgen_short.log").read_text()))
    su = next(g for g in groups if g.stype == "staff_su_t")
    assert su.missing == {"exe"}
    entries = _entries({"stype": "staff_su_t", "exe": "/bin/su", "reason": "su"})
    verdict = apply_allowlist(groups, entries, TODAY)
    assert su in verdict.unexplained
    assert verdict.unknowable == [(0, ["exe"], 1)]
    assert "allowlist[0] could not be checked against 1 group(s): the records carry no exe" in (
        "\n".join(verdict.lines()))


def test_settings_errors_name_target_and_field() -> None:
    with pytest.raises(SettingsError, match=r"target 'x': field 'suites.selinux.window'"):
        parse(SelinuxSettings, {"window": "yesterday"}, "x")
    with pytest.raises(SettingsError, match=r"'suites.selinux.allowlist\[0\].reason'"):
        parse(SelinuxSettings, {"allowlist": [{"comm": "httpd"}]}, "x")
    s = parse(SelinuxSettings, {"expect_mode": "enforcing", "watch": "warn"}, "x")
    assert (s.expect_mode, s.watch, s.window, s.source) == ("enforcing", "warn", "boot", "auto")


PS = """\
    1     0 system_u:system_r:init_t:s0            systemd
  812     1 system_u:system_r:container_runtime_t:s0 containerd
  901     1 system_u:system_r:container_runtime_t:s0 containerd-shim
  920   901 system_u:system_r:container_t:s0:c1,c2 pause
  930   901 system_u:system_r:container_t:s0:c1,c2 nginx
  931   930 system_u:system_r:container_t:s0:c1,c2 nginx
  940   901 system_u:system_r:spc_t:s0             kube-proxy
  950   901 system_u:system_r:container_runtime_t:s0 runc
 1001     1 system_u:system_r:container_runtime_t:s0 containerd-shim
 1002  1001 unconfined_u:unconfined_r:unconfined_t:s0 sh
 2000     1 system_u:system_r:sshd_t:s0-s0:c0.c1023 sshd
"""


def test_container_domains() -> None:
    procs = container_processes(parse_ps(PS))
    assert [p.pid for p in procs] == [920, 930, 931, 940, 1002]
    assert [(p.pid, p.type) for p in wrong_domains(procs)] == [
        (940, "spc_t"), (1002, "unconfined_t")]
    assert wrong_domains(procs, ["container_t", "spc_t", "unconfined_t"]) == []


# --- recorded on the lab's enforcing VM (tests/data/selinux/README.md) --------------------

VM_BOOTED = 1796080351.67  # host clock minus uptime when recorded
BOOT_DENIALS = {  # logged before auditd started: kernel log and journal only
    ("systemd_tmpfiles_t", "etc_t", "lnk_file", ("relabelfrom",)),
    ("systemd_tmpfiles_t", "user_home_dir_t", "dir", ("relabelfrom",)),
    ("udev_t", "sysctl_fs_t", "dir", ("search",)),
    ("udev_t", "udev_t", "process", ("setrlimit",)),
}


def _vm(name: str) -> str:
    return (DATA / f"vm_enforcing_{name}").read_text()


def _shape(groups: list[DenialGroup]) -> set[tuple[object, ...]]:
    return {(g.kind, g.stype, g.ttype, g.tclass, g.perms, g.comm, g.error, tuple(sorted(g.exes)),
             g.count, g.mode) for g in groups}


def test_boot_denials_before_auditd_merge_with_the_audit_log_once_each() -> None:
    audit = parse_records(_vm("ausearch.log"))
    kernel = parse_journal_json(_vm("journal.json"))
    found = {(r.stype, r.ttype, r.tclass, r.perms) for r in audit}
    assert not BOOT_DENIALS & found  # ausearch never sees them
    merged = merge_sources(audit, kernel)
    # every event once: the audit log's, plus the four from before auditd
    assert len(merged) == len(audit) + 4
    # records of one event that differ only in a detail are all kept (4 ioctl denials)
    modern = parse_records((DATA / "sepolgen_modern_permissive0.log").read_text())
    assert merge_sources(modern, modern) == modern and len(dedupe(modern)) == 4
    assert len({(r.serial, r.rtype, r.perms, r.tclass) for r in merged}) == len(merged)
    boot = [r for r in merged if (r.stype, r.ttype, r.tclass, r.perms) in BOOT_DENIALS]
    assert sorted(r.serial for r in boot) == [3, 4, 5, 6]
    assert all(r.timestamp is not None and r.timestamp >= VM_BOOTED for r in merged)
    assert all(r.permissive is False and r.exe is None for r in boot)  # no SYSCALL before auditd


def test_journal_and_ausearch_give_the_same_groups_with_exe_and_comm() -> None:
    audit = group_denials(parse_records(_vm("ausearch.log")))
    journal = group_denials(parse_journal_json(_vm("journal.json")))
    boot_free = [g for g in journal if (g.stype, g.ttype, g.tclass, g.perms) not in BOOT_DENIALS]
    assert _shape(boot_free) == _shape(audit)
    err = next(g for g in journal if g.kind == "error")
    # SELINUX_ERR has neither comm nor exe: both come from the event's SYSCALL entry
    assert (err.comm, err.exes, err.missing) == ("sh", {"/usr/bin/dash"}, frozenset())
    assert err.error == "op=fscreate invalid context system_u:object_r:no_such_t:s0"
    assert "invalid context system_u:object_r:no_such_t:s0" in err.summary()
    agetty = next(g for g in journal if g.comm == "agetty")
    assert agetty.exes == {"/usr/sbin/agetty"}
    entry = AllowEntry(exe="/usr/sbin/agetty", comm="agetty", reason="console")
    assert entry.matches(agetty) and entry.matches(next(g for g in audit if g.comm == "agetty"))


def test_journal_short_unix_lines_get_the_journal_time() -> None:
    short_unix = parse_records(_vm("journal_short_unix.log"))
    journal = parse_journal_json(_vm("journal.json"))

    def key(r: AvcRecord) -> tuple[object, ...]:
        return (r.rtype, round(r.timestamp or 0, 3), r.perms, r.stype, r.ttype, r.tclass)

    assert all(r.timestamp is not None for r in short_unix)
    assert {key(r) for r in short_unix} == {key(r) for r in journal}
    # both shapes: "audit[PID]: AVC avc: ..." takes the line's time, "kernel: audit:
    # type=1400 audit(...)" its own stamp
    assert any("audit[" in line and "AVC avc:" in line for line in _vm("journal_short_unix.log")
               .splitlines())
    assert {r.serial for r in short_unix if r.serial is not None} >= {3, 4, 5, 6}


def test_journal_short_lines_without_a_year_have_no_time() -> None:
    # -o short prints "Nov 30 23:13:20": no year, no zone. The kernel shape keeps its audit
    # stamp; the audit-transport shape cannot be placed in a window (the collector reads json)
    records = parse_records(_vm("journal_short.log"))
    kernel = [r for r in records if r.serial is not None]
    transport = [r for r in records if r.serial is None]
    assert kernel and all(r.timestamp is not None for r in kernel)
    assert transport and all(r.timestamp is None for r in transport)
    assert line_time("2026-11-30T23:13:20.691000+0000 vm audit[229]: AVC avc: ...") == (
        pytest.approx(1796080400.691))


def test_a_group_of_enforced_and_permissive_records_says_mixed() -> None:
    groups = group_denials(parse_records(_vm("ausearch.log")))
    transition = next(g for g in groups if g.tclass == "process" and g.perms == ("transition",))
    assert transition.modes == {False: 2, True: 1}
    assert transition.blocked is True
    assert "[mixed: 2 blocked, 1 permissive]" in transition.summary()
    assert next(g for g in groups if g.comm == "agetty").mode == "blocked"


def test_selinux_err_groups_keep_each_invalid_context() -> None:
    lines = [
        f"type=SELINUX_ERR msg=audit(1.{i}:{i}): op=security_compute_sid "
        f'invalid_context="system_u:system_r:{t}:s0" scontext=u:r:a_t:s0 tcontext=u:r:b_t:s0 '
        "tclass=process"
        for i, t in ((1, "x_t"), (2, "y_t"), (3, "x_t"))
    ]
    groups = group_denials(parse_records(lines))
    assert [(g.count, g.error) for g in groups] == [
        (2, "op=security_compute_sid invalid context system_u:system_r:x_t:s0"),
        (1, "op=security_compute_sid invalid context system_u:system_r:y_t:s0")]


@pytest.mark.parametrize(("enforce", "config", "cmdline"), [
    ("1", None, "security=selinux selinux=1 enforcing=1"),  # no config file, enforcing=1
    ("1", "SELINUX=enforcing\n", "security=selinux selinux=1"),
    ("0", "SELINUX=enforcing\n", "enforcing=0"),
    (None, "SELINUX=permissive\n", "selinux=0"),
    (None, "SELINUX=permissive\n", "lsm=landlock,yama"),
    ("1", "SELINUX=disabled\n", "enforcing=1"),
    (None, None, "ro"),
    ("0", "SELINUX=Permissive # set by %post\n", ""),
])
def test_image_and_selinux_suites_judge_consistency_alike(
    enforce: str | None, config: str | None, cmdline: str
) -> None:
    """One rule: the image suite's consistency check and the SELinux suite's mode check
    say the same on the same state."""
    from pytest_azlinux.posture.selinux import check_selinux_consistent
    from pytest_azlinux.profiles import load_profiles

    state = selinux_state(enforce, None, config, cmdline.split())
    consistent = not any("imply" in p for p in _problems(state, None, ""))
    assert consistent == (state.configured == state.runtime)
    image_findings = check_selinux_consistent(state, load_profiles().get("azl-3.0"))
    assert consistent == (image_findings == [])


def test_no_config_with_enforcing_on_the_command_line_is_consistent() -> None:
    # libselinux: the command line's enforcing= wins; an absent config does not disable
    readings = _mode("1", "", "security=selinux selinux=1 enforcing=1")
    assert readings.configured == "enforcing" and _problems(readings, None, "") == []


def test_kernel_log_filter_keeps_selinux_records_and_their_syscalls() -> None:
    """The collector's awk filter (run by the host's shell) on the VM's recorded journal:
    the same records with exe and comm, the SYSCALL entries of other events dropped."""
    from pytest_azlinux.selinux.collect import _EVENT_FILTER

    text = _vm("journal.json")
    kept = subprocess.run(["sh", "-c", _EVENT_FILTER], input=text, capture_output=True,
                          text=True, check=True).stdout
    assert len(kept.splitlines()) < len(text.splitlines())
    assert _shape(group_denials(parse_journal_json(kept))) == _shape(
        group_denials(parse_journal_json(text)))
    kernel_lines = [line for line in text.splitlines() if "type=1400 audit(" in line]
    assert kernel_lines and all(line in kept for line in kernel_lines)
