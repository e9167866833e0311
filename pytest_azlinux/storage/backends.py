"""Snapshot backends on a scratch block device: btrfs subvolumes and LVM thin volumes.

Each backend formats the claimed device, gives a live directory to write to, takes a
read-only snapshot that is readable at a path, says whether that snapshot is still there,
and rolls the live data back to it. Every step that creates something puts its undo into the
ledger first, so a failure or Ctrl-C anywhere leaves the device unmounted, and wiped of what
this run created (``ScratchDevice.wipe``).
"""

from __future__ import annotations

import secrets
import shlex
import string
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Protocol

from ..cleanup import CleanupLedger
from ..host import Host
from ..reads import Read
from .device import ScratchDevice

LVM_OPTS = ("--config='activation{udev_sync=0 udev_rules=0 verify_udev_operations=1} "
            "devices{obtain_device_list_from_udev=0}'")


class SnapshotBackend(Protocol):
    name: str

    def unavailable(self, host: Host) -> str | None:
        """Why this backend cannot run on ``host``, or None."""

    def prepare(self, host: Host, device: ScratchDevice, ledger: CleanupLedger) -> str:
        """Format ``device`` with a UUID noted by ``device.formatting``; return the live
        data directory."""

    def snapshot(self, host: Host, ledger: CleanupLedger) -> str:
        """Take a read-only snapshot of the live data; return where it can be read."""

    def snapshot_missing(self, host: Host) -> str | None:
        """Why the snapshot cannot be restored from (it is gone), or None."""

    def rollback(self, host: Host) -> str:
        """Restore the live data from the snapshot; return the live directory."""


def _sh(host: Host, script: str, timeout: float = 120) -> str:
    return host.run(script, sudo=True, check=True, timeout=timeout).stdout


def _lvm_uuid() -> str:
    """An LVM UUID as ``blkid`` shows it: 32 characters in groups of 6-4-4-4-4-4-6."""
    chars = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    groups, start = [], 0
    for size in (6, 4, 4, 4, 4, 4, 6):
        groups.append(chars[start:start + size])
        start += size
    return "-".join(groups)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")


@dataclass
class BtrfsBackend:
    """btrfs: live data in a subvolume, a read-only snapshot beside it, rollback by re-snapshot."""

    name: str = "btrfs"
    mountpoint: str = ""

    def unavailable(self, host: Host) -> str | None:
        found = Read("command -v mkfs.btrfs && grep -qw btrfs /proc/filesystems", sudo=True)
        if host.reads.fresh(found).rc != 0:
            return "btrfs not available (mkfs.btrfs missing or no btrfs in /proc/filesystems)"
        return None

    def prepare(self, host: Host, device: ScratchDevice, ledger: CleanupLedger) -> str:
        dev = shlex.quote(device.path)
        uuid = device.formatting(str(uuidlib.uuid4()))
        _sh(host, f"mkfs.btrfs -f -q -U {uuid} {dev}")
        self.mountpoint = _sh(host, "mktemp -d /tmp/azl-storage-XXXXXX").strip()
        mnt = shlex.quote(self.mountpoint)
        ledger.add(f"remove {self.mountpoint}", lambda: _sh(host, f"rmdir {mnt}"))
        _sh(host, f"mount {dev} {mnt}")
        ledger.add(f"unmount {self.mountpoint}", lambda: _sh(host, f"umount {mnt}"))
        _sh(host, f"btrfs -q subvolume create {mnt}/live")
        return f"{self.mountpoint}/live"

    def snapshot(self, host: Host, ledger: CleanupLedger) -> str:
        mnt = shlex.quote(self.mountpoint)
        _sh(host, f"sync; btrfs -q subvolume snapshot -r {mnt}/live {mnt}/snap")
        return f"{self.mountpoint}/snap"

    def snapshot_missing(self, host: Host) -> str | None:
        snap = f"{self.mountpoint}/snap"
        shown = host.reads.fresh(Read.of("btrfs subvolume show", snap, sudo=True), timeout=60)
        return None if shown.rc == 0 else f"snapshot {snap} is gone ({_first_line(shown.stderr)})"

    def rollback(self, host: Host) -> str:
        mnt = shlex.quote(self.mountpoint)
        _sh(host, f"btrfs -q subvolume delete {mnt}/live && "
                  f"btrfs -q subvolume snapshot {mnt}/snap {mnt}/live")
        return f"{self.mountpoint}/live"


@dataclass
class LvmThinBackend:
    """LVM thin: ext4 on a thin volume, a thin snapshot, rollback by ``lvconvert --merge``."""

    name: str = "lvm-thin"
    vg: str = field(default_factory=lambda: "azl" + secrets.token_hex(4))
    live_mnt: str = ""
    snap_mnt: str = ""

    def unavailable(self, host: Host) -> str | None:
        result = host.run("command -v lvcreate >/dev/null || { echo 'lvm2 not installed'; exit 1; }"
                          "; dmsetup version 2>/dev/null | grep -q 'Driver version' || "
                          "{ echo 'device-mapper not available in the kernel "
                          "(dmsetup version shows no driver)'; exit 1; }"
                          "; dmsetup targets 2>&1 | grep -qw thin-pool || "
                          "{ modprobe dm-thin-pool >/dev/null 2>&1 && exit 0; "
                          "echo \"device-mapper thin-pool target not available: "
                          "$(dmsetup version 2>&1 | tail -1)\"; exit 1; }", sudo=True)
        return result.stdout.strip() or "LVM thin not available" if result.rc != 0 else None

    def _lvm(self, host: Host, cmd: str) -> str:
        return _sh(host, f"{cmd} {LVM_OPTS}")

    def prepare(self, host: Host, device: ScratchDevice, ledger: CleanupLedger) -> str:
        dev = shlex.quote(device.path)
        uuid = device.formatting(_lvm_uuid())
        self._lvm(host, f"pvcreate -ff -y -q --uuid {uuid} --norestorefile {dev}")
        ledger.add(f"remove volume group {self.vg}",
                   lambda: self._lvm(host, f"vgremove -ff -y {self.vg} >/dev/null 2>&1; "
                                           f"pvremove -ff -y {dev}"))
        self._lvm(host, f"vgcreate -q {self.vg} {dev}")
        self._lvm(host, f"lvcreate -q -l 90%FREE --type thin-pool -n pool {self.vg}")
        self._lvm(host, f"lvcreate -q -V 512M -T {self.vg}/pool -n live")
        _sh(host, f"mkfs.ext4 -q /dev/{self.vg}/live")
        self.live_mnt = _sh(host, "mktemp -d /tmp/azl-storage-XXXXXX").strip()
        self.snap_mnt = _sh(host, "mktemp -d /tmp/azl-storage-XXXXXX").strip()
        live, snap = shlex.quote(self.live_mnt), shlex.quote(self.snap_mnt)
        ledger.add("remove mount points", lambda: _sh(host, f"rmdir {live} {snap}"))
        _sh(host, f"mount /dev/{self.vg}/live {live}")
        ledger.add(f"unmount {self.live_mnt}",
                   lambda: _sh(host, f"! mountpoint -q {live} || umount {live}"))
        return self.live_mnt

    def snapshot(self, host: Host, ledger: CleanupLedger) -> str:
        snap = shlex.quote(self.snap_mnt)
        _sh(host, "sync")
        self._lvm(host, f"lvcreate -q -s -n snap {self.vg}/live")
        self._lvm(host, f"lvchange -q -ay -K {self.vg}/snap")
        _sh(host, f"mount -o ro,noload /dev/{self.vg}/snap {snap}")
        ledger.add(f"unmount {self.snap_mnt}",
                   lambda: _sh(host, f"! mountpoint -q {snap} || umount {snap}"))
        return self.snap_mnt

    def snapshot_missing(self, host: Host) -> str | None:
        shown = host.reads.fresh(Read(f"lvs {self.vg}/snap {LVM_OPTS}", sudo=True), timeout=60)
        return None if shown.rc == 0 else (
            f"snapshot {self.vg}/snap is gone ({_first_line(shown.stderr)})")

    def rollback(self, host: Host) -> str:
        live, snap = shlex.quote(self.live_mnt), shlex.quote(self.snap_mnt)
        _sh(host, f"umount {snap} && umount {live}")
        self._lvm(host, f"lvconvert -q --merge {self.vg}/snap")
        self._lvm(host, f"lvchange -q -an {self.vg}/live && lvchange -q -ay {self.vg}/live")
        _sh(host, f"mount /dev/{self.vg}/live {live}")
        return self.live_mnt


BACKENDS: dict[str, type[BtrfsBackend] | type[LvmThinBackend]] = {
    "btrfs": BtrfsBackend,
    "lvm-thin": LvmThinBackend,
}
