"""Sentinels' pure parts on recorded real output (tests/data/sentinels/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_azlinux.errors import SettingsError
from pytest_azlinux.gate.denials import denial_findings
from pytest_azlinux.gate.sentinels import (
    DENIAL,
    Finding,
    HostWatch,
    failed_units,
    kernel_category,
    kernel_findings,
    parse_kmsg,
)
from pytest_azlinux.gate.settings import SentinelAllow, SentinelSettings
from pytest_azlinux.reads import Section, split_sections
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.settings import parse
from pytest_azlinux.targets import validate_target

DATA = Path(__file__).parents[1] / "data" / "sentinels"
PROVOKED = (DATA / "vm_kmsg_provoked.txt").read_text().splitlines()
MACHINE = (DATA / "machine_kmsg_boot.txt").read_text().splitlines()
DENIALS = (DATA / "vm_audit_denials.log").read_text().splitlines()


def test_kmsg_records() -> None:
    records = parse_kmsg(PROVOKED)
    assert [r.seq for r in records] == list(range(528, 592))
    warning = records[0]
    assert warning.facility == 1  # written to /dev/kmsg from user space
    assert warning.usec == 293820839
    assert warning.line() == ("[  293.820839] WARNING: CPU: 0 PID: 4242 at drivers/azl/gate.c:42 "
                              "gate_provoked+0x10/0x20 (written by user space)")
    assert records[-1].facility == 0
    assert parse_kmsg([" SUBSYSTEM=pci", "garbage", "6,x,1,-;no"]) == []


def test_provoked_events_are_found_once_per_category() -> None:
    findings = kernel_findings(parse_kmsg(PROVOKED), since_usec=None)
    assert [(f.sentinel, f.what, len(f.lines)) for f in findings] == [
        ("kernel", "WARNING", 1), ("kernel", "OOM kill", 3),
    ]
    oom = findings[1].lines
    assert "tail invoked oom-killer" in oom[0]
    assert oom[1].split("] ", 1)[1].startswith("oom-kill:constraint=CONSTRAINT_MEMCG")
    assert "Memory cgroup out of memory: Killed process 508 (tail)" in oom[2]


def test_records_before_the_test_started_are_marked() -> None:
    findings = kernel_findings(parse_kmsg(PROVOKED), since_usec=295_000_000)
    warning, oom = findings
    assert warning.lines[0].endswith("(before this test started)")
    assert not any(line.endswith("(before this test started)") for line in oom.lines)


def test_a_busy_machines_kernel_log_has_no_finding() -> None:
    """1747 records: boot (a command line with panic=1), bridges, loop devices, btrfs."""
    records = parse_kmsg(MACHINE)
    assert len(records) == 1747
    assert kernel_findings(records, since_usec=None) == []


@pytest.mark.parametrize(("text", "category"), [
    ("Kernel panic - not syncing: VFS: Unable to mount root fs", "panic"),
    ("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:1:123]", "soft lockup"),
    ("Watchdog detected hard LOCKUP on cpu 3", "hard lockup"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", "RCU stall"),
    ("INFO: task jbd2/sda1-8:251 blocked for more than 120 seconds.", "hung task"),
    ("Oops: general protection fault, probably for non-canonical address", "oops"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "BUG"),
    ("kernel BUG at mm/slub.c:379!", "BUG"),
    ("WARNING: CPU: 2 PID: 812 at fs/xfs/xfs_buf.c:1512 xfs_buf_ioend+0x1b3/0x1c0", "WARNING"),
    ("python3[4121]: segfault at 0 ip 00007f2a8c0d1a3b sp 00007ffd error 4", "segfault"),
    ("I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
     "I/O error"),
    ("EXT4-fs error (device sda1): ext4_lookup:1855: inode #2: comm ls: deleted inode",
     "ext4 error"),
    ("XFS (sdb1): Metadata corruption detected at xfs_dinode_verify+0xa0/0x600", "XFS error"),
    ("BTRFS error (device loop4): bad tree block start, want 30588928 have 0", "btrfs error"),
    ("device-mapper: verity: 253:1: data block 42 is corrupted", "dm-verity corruption"),
    ("audit: backlog limit exceeded", "audit backlog"),
    ("BTRFS info (device loop4): checking UUID tree", None),
    ("device-mapper: verity: sha256 using implementation \"sha256-generic\"", None),
    ("Command line: console=ttyS0 panic=1", None),
])
def test_categories(text: str, category: str | None) -> None:
    assert kernel_category(text) == category


def test_failed_units() -> None:
    lines = (DATA / "vm_units_failed.txt").read_text().splitlines()
    assert failed_units(lines) == {"azl-gate-fail.service"}
    assert failed_units(["● foo.service loaded failed failed Foo", ""]) == {"foo.service"}


def test_denial_lines() -> None:
    assert all(DENIAL.search(line) for line in DENIALS)
    assert DENIAL.search('audit: type=1400 audit(1.2:3): apparmor="DENIED" operation="open"')
    assert not DENIAL.search("audit: type=1400 avc:  granted  { setenforce }")


def sections(*lines: str) -> dict[str, Section]:
    return split_sections("\n".join(lines) + "\n")


def test_probe_then_observe() -> None:
    watch = HostWatch("vm-1", local_access=False)
    settings = SentinelSettings()
    watch._probe(sections(
        "==> up 290.5", "==> boot 6c1f5b2e-0000-4000-8000-000000000001", "==> systemd yes",
        "==> kmsg", "==> kmsg-last 527", "==> units", "==> audit 11443", "==> end",
    ), settings)
    assert watch.off == {} and watch.kmsg_seq == 527 and watch.audit_size == 11443
    script = watch.script(settings)
    assert "awk -F, -v s=527" in script and "tail -c +11444" in script
    seen = watch._observe(sections(
        "==> up 297.1", "==> kmsg", *PROVOKED, "==> kmsg-last 591",
        "==> units", *(DATA / "vm_units_failed.txt").read_text().splitlines(),
        "==> audit 12000", *DENIALS[1:], "==> end",
    ))
    assert len(seen.kernel) == 64 and watch.kmsg_seq == 591
    assert seen.new_units == ["azl-gate-fail.service"]
    assert seen.denial_lines == DENIALS[1:]
    assert seen.uptime == 297.1 and watch.audit_size == 12000
    again = watch._observe(sections(
        "==> up 300", "==> kmsg", PROVOKED[-1], "==> kmsg-last 591", "==> units",
        *(DATA / "vm_units_failed.txt").read_text().splitlines(), "==> audit 12000", "==> end",
    ))
    assert again.kernel == [] and again.new_units == []  # each reported once


def test_what_a_host_cannot_show_is_off_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pytest_azlinux.gate.sentinels._machine_boot_id", lambda: "same")
    lab_host = HostWatch("azl-1", local_access=False)
    lab_host._probe(sections("==> up 1", "==> boot same", "==> kmsg", "==> kmsg-last 9",
                             "==> end"), SentinelSettings())
    assert lab_host.off == {
        "kernel": "the host shares this machine's kernel (a namespaced lab host): its kernel "
                  "log is the machine's, not the host's own",
        "units": "no systemd on the host (PID 1 is not systemd)",
        "denials": "no readable audit log, and no kernel log of the host's own to find them in",
    }
    assert not lab_host.active
    local = HostWatch("localhost", local_access=True)  # this machine itself: its own kernel
    local._probe(sections("==> up 1", "==> boot same", "==> kmsg", "==> kmsg-last 9",
                          "==> end"), SentinelSettings())
    assert "kernel" not in local.off and "denials" not in local.off
    unprivileged = HostWatch("vm-2", local_access=False)
    unprivileged._probe(sections("==> up 1", "==> boot other", "==> systemd yes", "==> units",
                                 "==> end"), SentinelSettings(kernel=False))
    assert unprivileged.off["kernel"] == "off in the target's suites.sentinels"
    assert "units" not in unprivileged.off


def test_finding_text_is_cut_at_max_lines() -> None:
    finding = Finding("units", "3 unit(s) failed", ("a.service", "b.service", "c.service"))
    assert finding.describe(2) == ("  units: 3 unit(s) failed\n      a.service\n      b.service"
                                   "\n      ... and 1 more line(s)")


def test_settings_and_the_allowlist() -> None:
    settings = parse(SentinelSettings, {"kernel": False, "allowlist": [
        {"pattern": r"EXT4-fs error .* loop7", "sentinel": "kernel", "hosts": ["vm-*"],
         "reason": "scratch disk", "expires": "2027-01-31"},
    ]}, "canary")
    assert not settings.wants("kernel") and settings.wants("units")
    (entry,) = settings.allowlist
    line = "EXT4-fs error (device loop7): ext4_lookup"
    assert entry.matches("kernel", "vm-1", line)
    assert not entry.matches("units", "vm-1", line)
    assert not entry.matches("kernel", "bm-1", line)
    with pytest.raises(SettingsError, match=r"^target 'canary': field 'suites.sentinels"
                       r".allowlist\[0\].pattern': not a regular expression: .*$"):
        parse(SentinelSettings, {"allowlist": [{"pattern": "(", "reason": "r"}]}, "canary")
    with pytest.raises(SettingsError, match=r"allowlist\[0\].reason': Field required"):
        parse(SentinelSettings, {"allowlist": [{"pattern": "x"}]}, "canary")
    with pytest.raises(SettingsError, match=r"field 'suites.sentinels.kernal'"):
        parse(SentinelSettings, {"kernal": False}, "canary")
    assert SentinelAllow(pattern="x", reason="r").sentinel is None


def _target(suites: dict[str, object]) -> SelectedTarget:
    config = validate_target("vm", {"kind": "local", "suites": suites}, "test")
    return SelectedTarget("vm", config, ())


def test_selinux_denials_are_judged_by_the_selinux_allowlist() -> None:
    bare = denial_findings(DENIALS, _target({}), lambda line: False)
    assert [(f.sentinel, f.what) for f in bare] == [
        ("denials", "3 SELinux denial record(s) not in suites.selinux.allowlist")]
    assert any("comm=runcon" in line for line in bare[0].lines)
    allowed = _target({"selinux": {"allowlist": [
        {"comm": "agetty", "reason": "boot noise"}, {"comm": "runcon", "reason": "workload"},
    ]}})
    assert denial_findings(DENIALS, allowed, lambda line: False) == []


def test_apparmor_denials_are_judged_by_the_sentinel_allowlist() -> None:
    line = ('audit: type=1400 audit(1700000000.1:5): apparmor="DENIED" operation="open" '
            'profile="/usr/sbin/cupsd" name="/etc/shadow" pid=12 comm="cupsd"')
    (finding,) = denial_findings([line], _target({}), lambda text: False)
    assert finding.what == "1 AppArmor denial(s)" and finding.lines == (line,)
    assert denial_findings([line], _target({}), lambda text: "cupsd" in text) == []


def test_follower_tail_counts_whole_records_only() -> None:
    watch = HostWatch("vm-1", local_access=False)
    settings = SentinelSettings()
    assert "cat /dev/kmsg" not in watch.script(settings)  # none for the probe
    watch._probe(sections("==> up 1", "==> systemd yes", "==> kmsg", "==> kmsg-last 527",
                          "==> end"), settings)
    assert "cat /dev/kmsg" in watch.script(settings)  # the first check starts it
    watch._observe(sections("==> up 2", "==> kmsg", "==> kmsg-last 527",
                            "==> kmsg-follower 4321", "==> end"))
    assert (watch.follower, watch.follower_offset) == (4321, 0)
    script = watch.script(settings)
    assert "/proc/4321/comm" in script and "tail -c +1 /proc/4321/fd/1" in script
    # the file holds the old records too (filtered by sequence number) and a half-written one
    old, new = "6,500,100,-;before the run", PROVOKED[-1]
    seen = watch._observe(sections("==> up 3", "==> kmsg-tail", old, new, "6,999,1,-;half",
                                   "==> kmsg-tail-end", "==> end"))
    assert [r.seq for r in seen.kernel] == [591] and watch.kmsg_seq == 591
    assert watch.follower_offset == len(old) + len(new) + 2  # the half record: read again
    seen = watch._observe(sections("==> up 4", "==> kmsg-tail", "", "==> kmsg-tail-end",
                                   "==> end"))
    assert seen.kernel == [] and watch.follower_offset == len(old) + len(new) + 2


def test_denials_in_the_kernel_log_count_while_the_audit_log_stands_still() -> None:
    """auditd stopped mid-run with its log left in place (issue 28 #14): the log does not
    grow, the kernel prints the AVC to its log instead; the denials sentinel takes it from
    there (recorded on the enforcing VM with auditd stopped)."""
    watch = HostWatch("vm-1", local_access=False)
    watch._probe(sections("==> up 600", "==> boot x", "==> systemd yes", "==> kmsg",
                          "==> kmsg-last 619", "==> units", "==> audit 70000", "==> end"),
                 SentinelSettings())
    stopped = (DATA / "vm_kmsg_auditd_stopped.txt").read_text().splitlines()
    seen = watch._observe(sections("==> up 700", "==> kmsg", *stopped, "==> kmsg-last 625",
                                   "==> units", "==> audit 70000", "==> end"))
    assert len(seen.denial_lines) == 2, seen.denial_lines
    assert all("avc:  denied  { transition }" in line for line in seen.denial_lines)
    assert kernel_findings(seen.kernel, None) == []  # the denials sentinel's, not the kernel's
