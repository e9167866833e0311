"""The storage suite on lab hosts' loop disks with real btrfs.

The suite end to end (pass, skips, a corrupted snapshot, bad settings); the flow with the
data damaged at each step (after the rollback: metadata, shape, attributes; between writing
and the first reading; the snapshot deleted before the restore); the device guard against
real mounts in other mount namespaces and a second loop device on the same backing file;
cleanup that wipes only what the run created.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.errors import DeviceRefused
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.storage.backends import BtrfsBackend
from pytest_azlinux.storage.dataset import DatasetSpec
from pytest_azlinux.storage.device import ScratchDevice, signature
from pytest_azlinux.storage.flow import DATASET, Change, FlowResult, SnapshotFlow
from tests.fixtures.lab import lab_targets_with

SUITE = Path(__file__).resolve().parents[2] / "suites" / "storage"
STORAGE = {"storage": {"fio_seconds": 2}}
SMALL = DatasetSpec(files=8, sizes_kib=(4, 16), sparse_kib=1024)  # every kind of entry

# Loaded into the inner pytest run as a plugin (-p azl_tamper): after the suite's real
# snapshot, change one block of one file inside the snapshot, behind the suite's back (the
# suite must notice and name the file).
TAMPER_PLUGIN = '''
from pytest_azlinux.storage import backends

real_snapshot = backends.BtrfsBackend.snapshot

def corrupting_snapshot(self, host, ledger):
    snap = real_snapshot(self, host, ledger)
    host.run(
        f"btrfs property set -ts {snap} ro false && "
        f"dd if=/dev/urandom of={snap}/dataset/d1/f005.bin bs=512 count=1 seek=3 "
        f"conv=notrunc 2>/dev/null && sync && btrfs property set -ts {snap} ro true",
        sudo=True, check=True)
    return snap

backends.BtrfsBackend.snapshot = corrupting_snapshot
'''


def leftovers(host: Host) -> list[str]:
    """Mounts or filesystem signatures the suite would have left on the host's scratch disk."""
    device = host.spec.scratch_devices[0]
    mounts = host.run(f"grep -E 'azl-storage|{device} ' /proc/mounts", sudo=True).stdout
    found = host.run("wipefs -n", device, sudo=True).stdout
    return [line for line in (mounts + found).splitlines() if line.strip()]


def loop_devices() -> set[str]:
    """Loop devices other than the labs' own disks (labs of other test processes come and go)."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if "azl-lab" not in line}


def run_suite(pytester: pytest.Pytester, lab: Lab, tmp_path: Path, *extra: str,
              suites: dict[str, object] | None = None) -> pytest.RunResult:
    targets = lab_targets_with(lab, tmp_path, suites=STORAGE if suites is None else suites)
    return pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab", f"--azl-targets-file={targets}",
        "-p", "no:cacheprovider", f"--azl-junit-dir={tmp_path / 'reports'}", "-rs", *extra,
        timeout=600,
    )


@pytest.fixture
def host(lab_hosts: dict[str, Host]) -> Iterator[Host]:
    """The first lab host, its scratch disk free before and after the test."""
    first = next(iter(lab_hosts.values()))
    assert leftovers(first) == []
    yield first
    assert leftovers(first) == []


def device_of(host: Host) -> str:
    return host.spec.scratch_devices[0]


# -- the suite end to end ----------------------------------------------------------------------
def test_snapshot_restore_passes_on_every_lab_host(
        lab: Lab, lab_hosts: dict[str, Host], tmp_path: Path, pytester: pytest.Pytester) -> None:
    loops = loop_devices()
    result = run_suite(pytester, lab, tmp_path, "--azl-allow-destructive")
    # btrfs passes on each host; LVM thin skips with its reason (no device-mapper here)
    result.assert_outcomes(passed=3, skipped=3)
    result.stdout.fnmatch_lines(["*lvm-thin on *: device-mapper not available in the kernel*"])
    report = "\n".join(p.read_text() for p in (tmp_path / "reports").glob("*.xml"))
    assert 'name="metric.snapshot_seconds"' in report and 'name="metric.fio_write_iops"' in report
    # fio's IOPS of each second are the repetitions (fio_seconds 2: one or two of them)
    per_second = re.findall(r'name="metric.fio_write_iops.values" value="([^"]+)"', report)
    assert len(per_second) == 3 and all(1 <= len(v.split(",")) <= 3 for v in per_second), report
    assert "azl.storage.not_compared" not in report  # btrfs keeps xattrs and ACLs
    for lab_host in lab_hosts.values():
        assert leftovers(lab_host) == [], lab_host.name
    assert loop_devices() == loops


def test_without_the_flag_everything_skips_with_the_reason(
        lab: Lab, tmp_path: Path, pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, lab, tmp_path)
    result.assert_outcomes(skipped=6)
    result.stdout.fnmatch_lines(["*destructive: changes the target; run with "
                                 "--azl-allow-destructive*"])


def test_corrupted_snapshot_fails_naming_the_file(
        lab: Lab, lab_hosts: dict[str, Host], tmp_path: Path, pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(azl_tamper=TAMPER_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(pytester.path), os.environ.get("PYTHONPATH")) if p))
    first = lab.hosts[0].name
    result = run_suite(pytester, lab, tmp_path, "--azl-allow-destructive", "-p", "azl_tamper",
                       "-k", f"btrfs and {first}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*{first} /dev/loop* (btrfs, dataset seed *): data not preserved:*",
        "*snapshot right after it was taken: d1/f005.bin: content changed*",
    ])
    assert leftovers(lab_hosts[first]) == []


def test_a_bad_setting_is_one_line_naming_the_field(
        lab: Lab, tmp_path: Path, pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, lab, tmp_path, "--azl-allow-destructive", "-k", "btrfs",
                       suites={"storage": {"backends": ["zfs"]}})
    # validated at start-up: a usage error (exit 4) before anything touches a host
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*target 'lab': field 'suites.storage.backends[[]0[]]': "
                                 "Input should be 'btrfs' or 'lvm-thin'"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# -- the flow, with the data damaged at each step ----------------------------------------------
@dataclass
class DamagedAfterRollback(BtrfsBackend):
    """btrfs whose rollback leaves one difference (``script``, run in the restored dataset
    with ``$SNAP`` the snapshot's dataset, to put back what the damage would also change)."""

    script: str = ""

    def rollback(self, host: Host) -> str:
        live = super().rollback(host)
        root, snap = f"{live}/{DATASET}", f"{self.mountpoint}/snap/{DATASET}"
        host.run(f"set -e; cd {shlex.quote(root)}; SNAP={shlex.quote(snap)}; {self.script}",
                 sudo=True, check=True)
        return live


def _keep_parent(path: str) -> str:
    parent = path.rpartition("/")[0] or "."
    return f"touch -h -r $SNAP/{parent} {parent}"


SET_XATTR = "python3 -c 'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], b\"changed\")'"
DROP_XATTR = "python3 -c 'import os, sys; os.removexattr(sys.argv[1], sys.argv[2])'"
KEEP_TIME = "touch -h -r $SNAP/{0} {0}"
# id: (damage after the rollback, the problems it must cause, no other)
DAMAGES = {
    "mode": ("chmod 0777 d2/f002.bin", ["d2/f002.bin: mode 0777, expected 0755"]),
    "owner": ("chown 4242 d2/f002.bin", ["d2/f002.bin: owner uid 4242, expected *"]),
    "group": ("chgrp 4343 d2/f002.bin", ["d2/f002.bin: group gid 4343, expected *"]),
    "mtime": ("touch -h -d @86400 d2/f002.bin",
              ["d2/f002.bin: mtime 1970-01-02T00:00:00.000000000Z, expected *"]),
    "content": ("head -c 512 /dev/urandom | dd of=d2/f002.bin bs=512 seek=1 conv=notrunc "
                "status=none; "
                + KEEP_TIME.format("d2/f002.bin"),
                ["d2/f002.bin: content changed (sha256 *, expected *)"]),
    "size": ("truncate -s 100 d3/f003.bin; " + KEEP_TIME.format("d3/f003.bin"),
             ["d3/f003.bin: content changed*", "d3/f003.bin: size 100, expected 16384"]),
    "xattr": (f"{SET_XATTR} d0/f000.bin user.azl.note",
              ["d0/f000.bin: xattr user.azl.note 0x6368616e676564, expected 0x*"]),
    "acl": (f"{DROP_XATTR} d1/f001.bin system.posix_acl_access",
            ["d1/f001.bin: ACL absent, expected u::rw-,u:*:---,g::---,m::---,o::---",
             "links/hard-f001.bin: ACL absent, expected u::rw-,u:*:---,g::---,m::---,o::---"]),
    "default-acl": (f"{DROP_XATTR} empty system.posix_acl_default",
                    ["empty: default ACL absent, expected u::rwx,u:*:r--,g::r-x,m::r-x,o::---"]),
    "added-symlink": ("ln -s f000.bin d0/extra; " + _keep_parent("d0/extra"),
                      ["d0/extra: unexpected symlink -> f000.bin"]),
    "added-empty-dir": ("mkdir d0/extra; " + _keep_parent("d0/extra"),
                        ["d0/extra: unexpected directory"]),
    "added-fifo": ("mkfifo d0/extra; " + _keep_parent("d0/extra"),
                   ["d0/extra: unexpected fifo"]),
    "removed-empty-dir": ("rmdir empty; " + _keep_parent("empty"), ["empty: missing directory"]),
    "hard-link-copied": ("cp -a links/hard-f001.bin links/.copy; "
                         "mv links/.copy links/hard-f001.bin; " + _keep_parent("links/x"),
                         ["d1/f001.bin: hard-linked with nothing, expected with "
                          "links/hard-f001.bin",
                          "links/hard-f001.bin: hard-linked with nothing, expected with "
                          "d1/f001.bin"]),
    "symlink-retargeted": ("ln -sfn ../d0/f004.bin links/soft-to-f000; "
                           "chown -h $(stat -c %u:%g $SNAP/links/soft-to-f000) "
                           "links/soft-to-f000; "
                           + KEEP_TIME.format("links/soft-to-f000") + "; "
                           + _keep_parent("links/x"),
                           ["links/soft-to-f000: symlink to '../d0/f004.bin', "
                            "expected '../d0/f000.bin'"]),
    "fifo-now-a-file": ("rm special/fifo; : > special/fifo; " + _keep_parent("special/fifo"),
                        ["special/fifo: regular file, expected fifo"]),
    "sparse-filled": ("dd if=$SNAP/sparse/holes.img of=sparse/holes.img conv=notrunc "
                      "status=none; " + KEEP_TIME.format("sparse/holes.img"),
                      ["sparse/holes.img: no longer sparse (all 1048576 bytes allocated)"]),
}


def run_flow(flow: SnapshotFlow) -> FlowResult:
    try:
        return flow.run()
    finally:
        assert flow.ledger.run() == []


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_each_difference_after_the_rollback_fails_naming_it(host: Host, damage: str) -> None:
    script, expected = DAMAGES[damage]
    flow = SnapshotFlow(host, device_of(host), DamagedAfterRollback(script=script),
                        CleanupLedger(), SMALL)
    result = run_flow(flow)
    assert len(result.problems) == len(expected), result.problems
    for line, pattern in zip(result.problems, expected, strict=True):
        assert fnmatch.fnmatchcase(line, f"live data after rollback: {pattern}"), line


def test_the_same_flow_without_damage_passes(host: Host) -> None:
    result = run_flow(SnapshotFlow(host, device_of(host), DamagedAfterRollback(script="true"),
                                   CleanupLedger(), SMALL))
    assert result.problems == [] and result.not_compared == []
    assert result.restore_seconds is not None


class DamagedBeforeTheFirstReading(SnapshotFlow):
    """A file changed on the device between the writing and the first reading."""

    def write_known_data(self) -> None:
        super().write_known_data()
        self.host.run(f"head -c 512 /dev/urandom | dd of={self.live}/{DATASET}/d2/f002.bin "
                      "bs=512 seek=1 conv=notrunc status=none", sudo=True, check=True)


def test_data_damaged_before_the_first_reading_fails(host: Host) -> None:
    result = run_flow(DamagedBeforeTheFirstReading(host, device_of(host), BtrfsBackend(),
                                                   CleanupLedger(), SMALL))
    assert len(result.problems) == 2, result.problems
    assert fnmatch.fnmatchcase(result.problems[0],
                               "data as written: d2/f002.bin: content changed (sha256 *)")
    assert fnmatch.fnmatchcase(result.problems[1],  # dd wrote just now
                               "data as written: d2/f002.bin: mtime 20*, expected *")
    assert result.snapshot_seconds is None  # it stopped there


class SnapshotDeletedBeforeTheRestore(SnapshotFlow):
    def restore_and_check(self, result: FlowResult) -> list[str]:
        self.host.run("btrfs -q subvolume delete", self.snap, sudo=True, check=True)
        return super().restore_and_check(result)


def test_a_deleted_snapshot_is_one_line_and_the_live_data_stays(host: Host) -> None:
    flow = SnapshotDeletedBeforeTheRestore(host, device_of(host), BtrfsBackend(),
                                           CleanupLedger(), SMALL)
    try:
        result = flow.run()
        assert len(result.problems) == 1
        assert fnmatch.fnmatchcase(result.problems[0], (
            f"restore: snapshot {flow.snap} is gone (ERROR: *No such file or directory); "
            "the live data was left as it was")), result.problems
        assert result.restore_seconds is None
        assert host.exists(f"{flow.live}/{DATASET}/d0/added.bin", sudo=True)  # the changed data
    finally:
        assert flow.ledger.run() == []


class UnnoticedChange(SnapshotFlow):
    """One more "change" that changes nothing, on a file no other change touches."""

    def live_changes(self) -> list[Change]:
        changes = super().live_changes()
        touched = {c.path for c in changes}
        self.untouched = next(p for p in sorted(self.data.contents)
                              if p not in touched and not self.data.manifest[p].hardlinks)
        return [*changes, Change(self.untouched, "nothing at all", "true")]


def test_a_live_change_the_verification_misses_fails(host: Host) -> None:
    flow = UnnoticedChange(host, device_of(host), BtrfsBackend(), CleanupLedger(), SMALL)
    result = run_flow(flow)
    assert result.problems == [
        f"live data after the changes: {flow.untouched} (nothing at all) not detected"]


# -- the device guard --------------------------------------------------------------------------
def _wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stop(host: Host, pid: int) -> None:
    """Kill a process of the host; done when gone or a zombie (the host's init does not reap),
    which no longer holds its mount namespace."""
    host.run(f"kill {pid}; while [ -e /proc/{pid} ] && "
             f"! grep -q '^State:.*Z' /proc/{pid}/status 2>/dev/null; do sleep 0.1; done",
             sudo=True, timeout=60)


@contextlib.contextmanager
def ext4_with_marker(host: Host) -> Iterator[str]:
    """An ext4 filesystem (someone else's) on the host's scratch device; its UUID. Wiped at the
    end by the test itself."""
    device = device_of(host)
    host.run(f"mkfs.ext4 -q -F {device}", sudo=True, check=True)
    found = signature(host, device)
    assert found is not None and found.uuid
    try:
        yield found.uuid
    finally:
        host.run(f"wipefs -a -q {device}", sudo=True, check=True)


@contextlib.contextmanager
def mounted_in_own_namespace(host: Host, mountpoint: str = "/tmp/held") -> Iterator[str]:
    device = device_of(host)
    host.run(f"mkdir -p {mountpoint} && mount {device} {mountpoint} && "
             f"echo precious > {mountpoint}/marker", sudo=True, check=True)
    try:
        yield mountpoint
    finally:
        host.run(f"umount {mountpoint}; rmdir {mountpoint}", sudo=True, check=True)


@contextlib.contextmanager
def mounted_in_a_host_namespace(host: Host) -> Iterator[int]:
    """Mounted in a second mount namespace on the host (``unshare -m``, a sleeping process)."""
    device = device_of(host)
    pid = int(host.run(
        f"mkdir -p /tmp/other-ns; unshare -m sh -c 'mount {device} /tmp/other-ns && "
        "echo precious > /tmp/other-ns/marker && exec sleep 600' >/dev/null 2>&1 & echo $!",
        sudo=True, check=True).stdout.split()[-1])
    try:
        _wait_for("the mount in the other namespace", lambda: host.run(
            f"grep -q ' /tmp/other-ns ' /proc/{pid}/mountinfo", sudo=True).rc == 0)
        assert host.run(f"grep -q '{device} ' /proc/mounts", sudo=True).rc != 0  # not here
        yield pid
    finally:
        stop(host, pid)
        host.run("rmdir /tmp/other-ns", sudo=True, check=True)


@contextlib.contextmanager
def mounted_where_the_host_cannot_see(host: Host, where: Path) -> Iterator[Path]:
    """Mounted in a mount namespace of the machine, whose processes the lab host (its own
    PID namespace) does not see."""
    where.mkdir()
    proc = subprocess.Popen(["unshare", "-m", "sh", "-c",
                             f"mount {device_of(host)} {where} && echo precious > {where}/marker"
                             " && echo ready && exec sleep 600"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield where
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def second_loop_device_mounted(host: Host, where: Path) -> Iterator[str]:
    """The scratch disk's backing file attached as a second loop device, mounted here."""
    device = device_of(host)
    backing = subprocess.run(["losetup", "-n", "-O", "BACK-FILE", "-l", device],
                             capture_output=True, text=True, check=True).stdout.strip()
    second = subprocess.run(["losetup", "-f", "--show", backing],
                            capture_output=True, text=True, check=True).stdout.strip()
    where.mkdir()
    try:
        subprocess.run(["mount", second, str(where)], check=True)
        (where / "marker").write_text("precious\n")
        try:
            yield second
        finally:
            subprocess.run(["umount", str(where)], check=True)
    finally:
        subprocess.run(["losetup", "-d", second], check=True)


def assert_refused_and_intact(host: Host, uuid: str, *reasons: str) -> None:
    """The flow is refused for every reason given, and the filesystem there is untouched."""
    ledger = CleanupLedger()
    flow = SnapshotFlow(host, device_of(host), BtrfsBackend(), ledger, SMALL)
    with pytest.raises(DeviceRefused) as refused:
        flow.run()
    assert ledger.run() == []
    message = str(refused.value)
    assert message.startswith(f"{host.name}: refusing {device_of(host)}: ")
    for reason in reasons:
        assert fnmatch.fnmatchcase(message, f"*{reason}*"), message
    found = signature(host, device_of(host))
    assert found is not None and found.uuid == uuid, "the filesystem there was changed"


def test_mounted_device_is_refused_as_an_error(host: Host) -> None:
    with ext4_with_marker(host) as uuid, mounted_in_own_namespace(host) as mountpoint:
        assert_refused_and_intact(host, uuid, f"{device_of(host)} mounted on {mountpoint}")
        assert host.read_text(f"{mountpoint}/marker", sudo=True) == "precious\n"


def test_a_mount_in_another_namespace_of_the_host_is_refused(host: Host) -> None:
    with ext4_with_marker(host) as uuid, mounted_in_a_host_namespace(host) as pid:
        assert_refused_and_intact(
            host, uuid, f"mounted on /tmp/other-ns in another mount namespace (pid {pid}, sleep)")
        assert host.read_text(f"/proc/{pid}/root/tmp/other-ns/marker", sudo=True) == "precious\n"


def test_a_mount_the_host_cannot_see_is_refused(host: Host, tmp_path: Path) -> None:
    with ext4_with_marker(host) as uuid, \
            mounted_where_the_host_cannot_see(host, tmp_path / "hidden"):
        assert_refused_and_intact(host, uuid, "in use: the kernel refuses an exclusive open "
                                              "(Device or resource busy)*")


def test_the_backing_file_mounted_through_a_second_loop_device_is_refused(
        host: Host, tmp_path: Path) -> None:
    with ext4_with_marker(host) as uuid, \
            second_loop_device_mounted(host, tmp_path / "second") as second:
        assert_refused_and_intact(host, uuid, f"is also attached as {second}")
        assert (tmp_path / "second" / "marker").read_text() == "precious\n"


def test_an_existing_filesystem_is_refused_unless_overwriting_is_allowed(host: Host) -> None:
    with ext4_with_marker(host) as uuid:
        assert_refused_and_intact(host, uuid, f"blkid finds a signature on it: ext4 filesystem "
                                              f"(UUID {uuid}) (set suites.storage.overwrite_"
                                              "existing: true to format it anyway)")
        result = run_flow(SnapshotFlow(host, device_of(host), BtrfsBackend(), CleanupLedger(),
                                       SMALL, overwrite_existing=True))
        assert result.problems == []
        assert signature(host, device_of(host)) is None  # the run's btrfs, wiped


def test_device_not_named_in_the_target_is_refused(host: Host) -> None:
    flow = SnapshotFlow(host, "/dev/vda", BtrfsBackend(), CleanupLedger())
    with pytest.raises(DeviceRefused, match="/dev/vda is not a scratch device named in the target"):
        flow.run()


# -- cleanup -----------------------------------------------------------------------------------
def test_cleanup_runs_when_the_flow_breaks_midway(host: Host) -> None:
    ledger = CleanupLedger()
    flow = SnapshotFlow(host, device_of(host), BtrfsBackend(), ledger, SMALL)
    flow.prepare()
    flow.write_known_data()
    assert host.exists(f"{flow.live}/{DATASET}", sudo=True)
    assert leftovers(host) != []  # mounted and formatted right now
    assert ledger.run() == []  # what a failing test's teardown does


def test_cleanup_does_not_wipe_a_filesystem_this_run_did_not_write(host: Host) -> None:
    ledger = CleanupLedger()
    device = ScratchDevice.claim(host, device_of(host), ledger)
    device.formatting("3f1c0a52-5d4e-4a8e-9d47-0c2b6f3e9a11")  # a format that never wrote
    with ext4_with_marker(host) as uuid:  # someone else's, made meanwhile
        assert ledger.run() == []
        found = signature(host, device_of(host))
        assert found is not None and found.uuid == uuid


def test_cleanup_does_not_wipe_while_the_filesystem_is_mounted_elsewhere(host: Host) -> None:
    ledger = CleanupLedger()
    flow = SnapshotFlow(host, device_of(host), BtrfsBackend(), ledger, SMALL)
    flow.prepare()
    pid = int(host.run(
        f"mkdir -p /tmp/other-ns; unshare -m sh -c 'mount {device_of(host)} /tmp/other-ns && "
        "exec sleep 600' >/dev/null 2>&1 & echo $!", sudo=True, check=True).stdout.split()[-1])
    try:
        _wait_for("the mount in the other namespace", lambda: host.run(
            f"grep -q ' /tmp/other-ns ' /proc/{pid}/mountinfo", sudo=True).rc == 0)
        failures = ledger.run()
        assert len(failures) == 1 and failures[0].startswith(
            f"wipe {device_of(host)}: {host.name}: not wiping {device_of(host)}: "), failures
        assert "mounted on /tmp/other-ns in another mount namespace" in failures[0]
        assert signature(host, device_of(host)) is not None  # still there
    finally:
        stop(host, pid)
        host.run(f"rmdir /tmp/other-ns; wipefs -a -q {device_of(host)}", sudo=True, check=True)
