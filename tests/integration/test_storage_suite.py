"""The storage suite on lab hosts' loop disks with real btrfs: pass, corruption, guards, cleanup."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_azlinux.cleanup import CleanupLedger
from pytest_azlinux.host import Host
from pytest_azlinux.lab import Lab
from pytest_azlinux.storage.backends import BtrfsBackend
from pytest_azlinux.storage.device import DeviceRefused
from pytest_azlinux.storage.flow import DATASET, SnapshotFlow
from pytest_azlinux.storage.verify import DatasetSpec
from tests.fixtures.lab import lab_targets_with

SUITE = Path(__file__).resolve().parents[2] / "suites" / "storage"
STORAGE = {"storage": {"fio_seconds": 2}}

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
    mounts = host.run(f"grep -E 'azl-storage|{device}' /proc/mounts", sudo=True).stdout
    signature = host.run("wipefs -n", device, sudo=True).stdout
    return [line for line in (mounts + signature).splitlines() if line.strip()]


def loop_devices() -> set[str]:
    """Loop devices other than the labs' own disks (labs of other test processes come and go)."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if "azl-lab" not in line}


def run_suite(pytester: pytest.Pytester, lab: Lab, tmp_path: Path,
              *extra: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(SUITE), "--azl-target=lab",
        f"--azl-targets-file={lab_targets_with(lab, tmp_path, suites=STORAGE)}",
        "-p", "no:cacheprovider", f"--azl-junit-dir={tmp_path / 'reports'}", "-rs", *extra,
        timeout=600,
    )


def test_snapshot_restore_passes_on_every_lab_host(
        lab: Lab, lab_hosts: dict[str, Host], tmp_path: Path, pytester: pytest.Pytester) -> None:
    loops = loop_devices()
    result = run_suite(pytester, lab, tmp_path, "--azl-allow-destructive")
    # btrfs passes on each host; LVM thin skips with its reason (no device-mapper here)
    result.assert_outcomes(passed=3, skipped=3)
    result.stdout.fnmatch_lines(["*lvm-thin on *: device-mapper not available in the kernel*"])
    report = "\n".join(p.read_text() for p in (tmp_path / "reports").glob("*.xml"))
    assert 'name="metric.snapshot_seconds"' in report and 'name="metric.fio_write_iops"' in report
    for host in lab_hosts.values():
        assert leftovers(host) == [], host.name
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
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    first = lab.hosts[0].name
    result = run_suite(pytester, lab, tmp_path, "--azl-allow-destructive", "-p", "azl_tamper",
                       "-k", f"btrfs and {first}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*{first} /dev/loop* (btrfs): data not preserved:*",
        "*snapshot right after it was taken: d1/f005.bin: content changed*",
    ])
    assert leftovers(lab_hosts[first]) == []


def test_mounted_device_is_refused_as_an_error(lab_hosts: dict[str, Host]) -> None:
    host = next(iter(lab_hosts.values()))
    device = host.spec.scratch_devices[0]
    host.run(f"mkfs.ext4 -q -F {device} && mkdir -p /tmp/held && mount {device} /tmp/held",
             sudo=True, check=True)
    ledger = CleanupLedger()
    try:
        flow = SnapshotFlow(host, device, BtrfsBackend(), ledger, DatasetSpec(files=2))
        with pytest.raises(DeviceRefused, match=rf"refusing {device}: mounted on /tmp/held"):
            flow.run()
    finally:
        assert ledger.run() == []
        host.run(f"umount /tmp/held; rmdir /tmp/held; wipefs -a -q {device}", sudo=True,
                 check=True)
    assert leftovers(host) == []


def test_device_not_named_in_the_target_is_refused(lab_hosts: dict[str, Host]) -> None:
    host = next(iter(lab_hosts.values()))
    flow = SnapshotFlow(host, "/dev/vda", BtrfsBackend(), CleanupLedger())
    with pytest.raises(DeviceRefused, match="/dev/vda is not a scratch device named in the target"):
        flow.run()


def test_cleanup_runs_when_the_flow_breaks_midway(lab_hosts: dict[str, Host]) -> None:
    host = next(iter(lab_hosts.values()))
    ledger = CleanupLedger()
    flow = SnapshotFlow(host, host.spec.scratch_devices[0], BtrfsBackend(), ledger,
                        DatasetSpec(files=2))
    flow.prepare()
    assert host.exists(f"{flow.live}/{DATASET}", sudo=True)
    assert leftovers(host) != []  # mounted and formatted right now
    assert ledger.run() == []  # what a failing test's teardown does
    assert leftovers(host) == []
