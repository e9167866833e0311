"""What the image file claims to be, read from the disk before it boots.

The overlay (never the file itself) is exported read-only as a raw view by
``qemu-storage-daemon`` over FUSE (no nbd kernel module needed; a loop device could not read
qcow2 or VHD), its partition table (MBR or GPT) is read here, and ``debugfs`` (read-only, no
mount) prints ``/etc/os-release`` from each ext2/3/4 partition until one has it. Anything
missing (no FUSE, no debugfs, another file system) is a reason, never an error: the claims
are evidence for the report, the booted system is what the tests judge.

The same read gathers what decides how the image is provisioned (``provisioning.detect``):
the partition names (GPT) and file system labels (ext2/3/4), and which first-boot
provisioners the root file system carries (``PROVISIONER_PATHS``).
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512
EXT_MAGIC_OFFSET = 1024 + 56  # superblock at 1024, s_magic at 56
EXT_MAGIC = b"\x53\xef"
EXPORT_WAIT_SECONDS = 30.0
# the last: a partition that holds /usr itself (Flatcar's and ACL's USR-A, USR-B)
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release", "/lib/os-release")
EXT_LABEL_OFFSET = 1024 + 120  # s_volume_name, 16 bytes
GPT_NAME_OFFSET = 56  # partition name, 36 UTF-16LE code units
# A first-boot provisioner the root file system carries: its program's paths.
PROVISIONER_PATHS = {
    "ignition": ("/usr/bin/ignition", "/usr/lib/dracut/modules.d/30ignition/ignition"),
    "cloud-init": ("/usr/bin/cloud-init",),
}


@dataclass(frozen=True)
class DiskFacts:
    """What the disk says before it boots."""

    os_release: dict[str, str] = field(default_factory=dict)
    skipped: str = ""  # why os-release was not read ("" when it was)
    labels: tuple[str, ...] = ()  # GPT partition names and ext file system labels
    provisioners: tuple[str, ...] = ()  # keys of PROVISIONER_PATHS found on the root


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def partition_offsets(head: bytes, read: Callable[[int, int], bytes]) -> list[int]:
    """Byte offsets of the partitions of a disk (MBR or GPT); [0] for a bare file system."""
    return [offset for offset, _ in partitions(head, read)]


def partitions(head: bytes, read: Callable[[int, int], bytes]) -> list[tuple[int, str]]:
    """(byte offset, GPT name or "") of each partition; [(0, "")] for a bare file system."""
    if len(head) < SECTOR or head[510:512] != b"\x55\xaa":
        return [(0, "")]
    entries = [head[446 + 16 * i : 462 + 16 * i] for i in range(4)]
    if any(e[4] == 0xEE for e in entries):
        gpt = read(SECTOR, SECTOR)
        if gpt[:8] != b"EFI PART":
            return []
        lba, count, size = struct.unpack_from("<QII", gpt, 72)
        table = read(lba * SECTOR, min(count, 128) * size)
        out = []
        for i in range(min(count, 128)):
            entry = table[i * size : (i + 1) * size]
            first = struct.unpack_from("<Q", entry, 32)[0]
            if entry[:16] != bytes(16) and first:
                raw_name = entry[GPT_NAME_OFFSET : GPT_NAME_OFFSET + 72]
                name = raw_name.decode("utf-16-le", errors="replace").split("\0")[0]
                out.append((first * SECTOR, name))
        return out
    return [(struct.unpack_from("<I", e, 8)[0] * SECTOR, "") for e in entries
            if e[4] and e[12:16]]  # fmt: skip


@contextlib.contextmanager
def _raw_view(overlay: Path) -> Iterator[Path]:
    """The overlay as a raw, read-only file (qemu-storage-daemon's FUSE export)."""
    with tempfile.TemporaryDirectory(prefix="azl-claims-") as tmp:
        mountpoint = Path(tmp) / "disk.raw"
        mountpoint.touch()
        proc = subprocess.Popen(
            ["qemu-storage-daemon",
             "--blockdev", f"driver=file,node-name=file0,filename={overlay},read-only=on",
             "--blockdev", "driver=qcow2,node-name=disk0,file=file0,read-only=on",
             "--export", f"type=fuse,id=exp0,node-name=disk0,mountpoint={mountpoint},"
             "writable=off"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + EXPORT_WAIT_SECONDS
            while not _is_mounted(mountpoint):
                if proc.poll() is not None:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    raise OSError(f"qemu-storage-daemon: {out.strip() or 'exited'}")
                if time.monotonic() > deadline:
                    raise OSError("qemu-storage-daemon: the FUSE export did not appear")
                time.sleep(0.1)
            yield mountpoint
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)


def _is_mounted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return any(line.split()[1] == str(path) for line in open("/proc/self/mounts"))
    return False


def _debugfs_cat(device: Path, offset: int, path: str) -> str:
    res = subprocess.run(
        ["debugfs", "-c", "-R", f"cat {path}", f"{device}?offset={offset}"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return res.stdout if res.returncode == 0 else ""


def _debugfs_exists(device: Path, offset: int, paths: tuple[str, ...]) -> bool:
    """Whether any of ``paths`` exists on the ext file system at ``offset`` (debugfs stat)."""
    for path in paths:
        res = subprocess.run(
            ["debugfs", "-c", "-R", f"stat {path}", f"{device}?offset={offset}"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if res.returncode == 0 and "Inode:" in res.stdout:
            return True
    return False


def read_claims(overlay: Path) -> tuple[dict[str, str], str]:
    """(os-release of the file, "") or ({}, why it was not read)."""
    facts = read_disk(overlay)
    return facts.os_release, facts.skipped


def read_disk(overlay: Path) -> DiskFacts:
    """os-release, labels and provisioners of the disk behind ``overlay`` (a qcow2)."""
    missing = [t for t in ("qemu-storage-daemon", "debugfs") if shutil.which(t) is None]
    if missing:
        return DiskFacts(skipped=f"{' and '.join(missing)} not installed")
    if not Path("/dev/fuse").exists():
        return DiskFacts(skipped="no /dev/fuse (qemu-storage-daemon exports the disk over FUSE)")
    try:
        with _raw_view(overlay) as raw, raw.open("rb") as disk:

            def read(offset: int, size: int) -> bytes:
                disk.seek(offset)
                return disk.read(size)

            parts = partitions(read(0, SECTOR), read)
            labels = [name for _, name in parts if name]
            ext = [o for o, _ in parts if read(o + EXT_MAGIC_OFFSET, 2) == EXT_MAGIC]
            for offset in ext:
                label = read(offset + EXT_LABEL_OFFSET, 16).split(b"\0")[0]
                if label:
                    labels.append(label.decode(errors="replace"))
            if not ext:
                why = f"no ext2/3/4 file system among {len(parts)} partition(s)"
                return DiskFacts(skipped=why, labels=tuple(labels))
            for offset in ext:
                for path in OS_RELEASE_PATHS:
                    found = parse_os_release(_debugfs_cat(raw, offset, path))
                    if found.get("ID"):
                        provisioners = tuple(
                            name for name, paths in PROVISIONER_PATHS.items()
                            if _debugfs_exists(raw, offset, paths)
                        )  # fmt: skip
                        return DiskFacts(found, "", tuple(labels), provisioners)
            return DiskFacts(skipped="no os-release in any ext2/3/4 partition",
                             labels=tuple(labels))  # fmt: skip
    except (OSError, subprocess.SubprocessError, struct.error) as exc:
        return DiskFacts(skipped=f"cannot read the disk: {exc}")
