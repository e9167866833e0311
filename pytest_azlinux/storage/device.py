"""The scratch device: refused unless free, and wiped only when what it holds is ours.

Before formatting, a device is refused (``DeviceRefused``, an ERROR naming host, device and
every reason) unless it is named in the host's ``scratch_devices``, is a block device, and is
in use nowhere:

- mounted (itself or a partition) in any mount namespace that ``/proc/*/mountinfo`` shows,
  compared by major:minor and by mount source (btrfs reports an anonymous major:minor);
- used as swap; held by device-mapper, md or bcache (``holders/``);
- a loop device whose backing file is also attached as another loop device (the same blocks
  through a second device: mounting that one is invisible to this one), or the backing
  file of a loop device;
- claimed by the kernel: an exclusive open fails (a mount in a namespace this host's
  ``/proc`` does not show, a btrfs filesystem spanning it; needs ``python3`` on the host);
- holding a filesystem or partition table that ``blkid`` finds, unless the target allows
  overwriting it (``suites.storage.overwrite_existing``).

Cleanup wipes the device only when it carries the UUID this run gave its filesystem, and
never while it is in use (the same checks, without ``blkid``).
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass

from ..cleanup import CleanupLedger
from ..errors import DeviceRefused
from ..host import Host
from ..reads import Read

log = logging.getLogger("pytest_azlinux.storage")
MAX_REASONS = 6  # a device mounted in many namespaces: the first few say enough

# Prints "reason<TAB>detail" lines for every way $1 is in use.
IN_USE_SCRIPT = r"""
dev=$1
[ -b "$dev" ] || { printf 'absent\t%s is not a block device\n' "$dev"; exit 0; }
real=$(readlink -f "$dev"); name=${real##*/}
paths=$real; nums=$(cat "/sys/class/block/$name/dev")
for p in /sys/class/block/"$name"/"$name"*; do
  [ -e "$p/partition" ] || continue
  paths="$paths /dev/${p##*/}"; nums="$nums $(cat "$p/dev")"
  for h in "$p"/holders/*; do
    [ -e "$h" ] && printf 'held\tpartition %s held by %s\n' "${p##*/}" "${h##*/}"
  done
done
for h in /sys/class/block/"$name"/holders/*; do
  [ -e "$h" ] && printf 'held\theld by %s\n' "${h##*/}"
done
# one process per mount namespace (namespaces by inode)
own=$(stat -L -c %i /proc/$$/ns/mnt)
stat -L -c '%i %n' /proc/[0-9]*/ns/mnt 2>/dev/null | sort -u -k1,1 | while read -r ns link; do
  pid=${link#/proc/}; pid=${pid%%/*}
  if [ "$ns" = "$own" ]; then where=; else
    where=" in another mount namespace (pid $pid, $(cat /proc/$pid/comm 2>/dev/null))"; fi
  awk -v nums=" $nums " -v paths=" $paths " -v where="$where" '{
      for (i = 7; i <= NF && $i != "-"; i++) ;
      if (index(nums, " " $3 " ") || index(paths, " " $(i + 2) " "))
        printf "mounted\t%s mounted on %s%s\n", $(i + 2), $5, where
    }' /proc/$pid/mountinfo 2>/dev/null
done
awk -v paths=" $paths " 'NR > 1 && index(paths, " " $1 " ") {
    printf "swap\t%s in use as swap\n", $1 }' /proc/swaps
# loop devices: the same backing file attached twice; this device as a backing file
if [ -e "/sys/block/$name/loop" ] && command -v losetup >/dev/null; then
  mine=$(losetup -n -l -O BACK-MAJ:MIN,BACK-INO "$real" | awk '{print $1, $2}')
  losetup -n -l -O NAME,BACK-MAJ:MIN,BACK-INO,BACK-FILE | while read -r other num ino file; do
    [ "$other" != "$real" ] && [ "$num $ino" = "$mine" ] &&
      printf 'loop\tits backing file %s is also attached as %s\n' "$file" "$other"
  done
fi
command -v losetup >/dev/null && losetup -n -l -O NAME,BACK-FILE | while read -r other file; do
  [ "$file" = "$real" ] && printf 'loop\tthe backing file of %s\n' "$other"
done
# the kernel's own claim (mounted anywhere, held): an exclusive open fails
command -v python3 >/dev/null && python3 -c '
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL))
except OSError as exc:
    print("exclusive\tin use: the kernel refuses an exclusive open (%s), so it is mounted or "
          "held where this host cannot see it" % exc.strerror)
' "$real"
true
"""


def in_use(host: Host, device: str) -> list[str]:
    """Every way ``device`` is in use on ``host`` (empty when free)."""
    read = Read(f"sh -c {shlex.quote(IN_USE_SCRIPT)} sh {shlex.quote(device)}", sudo=True)
    result = host.reads.fresh(read, timeout=60, check=True)
    reasons: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        kind, _, text = line.partition("\t")
        if text and text not in reasons.setdefault(kind, []):
            reasons[kind].append(text)
    if len(reasons) > 1:  # the exclusive open only explains what nothing else did
        reasons.pop("exclusive", None)
    return [text for texts in reasons.values() for text in texts]


@dataclass(frozen=True)
class Signature:
    """What ``blkid -p`` finds on a device."""

    type: str  # btrfs, LVM2_member, gpt (a partition table)...
    usage: str  # filesystem, raid, partition table...
    uuid: str | None

    def __str__(self) -> str:
        return f"{self.type} {self.usage}" + (f" (UUID {self.uuid})" if self.uuid else "")


def signature(host: Host, device: str) -> Signature | None:
    """What ``blkid`` finds on ``device``, or None."""
    result = host.reads.fresh(Read.of("blkid -p -o export", device, sudo=True), timeout=60)
    if result.rc == 2:  # nothing found
        return None
    if result.rc != 0:
        raise DeviceRefused(f"{host.name}: cannot probe {device}: blkid exited {result.rc}: "
                            f"{result.stderr.strip()}")
    tags = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if "TYPE" not in tags and "PTTYPE" in tags:
        return Signature(tags["PTTYPE"], "partition table", tags.get("PTUUID"))
    return Signature(tags.get("TYPE", "unknown"), tags.get("USAGE", "signature"),
                     tags.get("UUID"))


def check_scratch_device(host: Host, device: str, *, overwrite_existing: bool = False) -> None:
    """Raise ``DeviceRefused`` naming host, device and every reason it may not be formatted."""
    if device not in host.spec.scratch_devices:
        raise DeviceRefused(
            f"{host.name}: {device} is not a scratch device named in the target "
            f"(scratch_devices: {', '.join(host.spec.scratch_devices) or 'none'})"
        )
    reasons = in_use(host, device)
    if not reasons and not overwrite_existing:
        found = signature(host, device)
        if found is not None:
            reasons.append(f"blkid finds a signature on it: {found} (set "
                           "suites.storage.overwrite_existing: true to format it anyway)")
    if reasons:
        shown = reasons[:MAX_REASONS] + ([f"and {len(reasons) - MAX_REASONS} more"]
                                         if len(reasons) > MAX_REASONS else [])
        raise DeviceRefused(f"{host.name}: refusing {device}: {'; '.join(shown)}")


@dataclass
class ScratchDevice:
    """A device this run may format; ``wipe`` removes only the signature it created."""

    host: Host
    path: str
    uuid: str | None = None  # of the filesystem or PV this run writes (``formatting``)

    @classmethod
    def claim(cls, host: Host, path: str, ledger: CleanupLedger, *,
              overwrite_existing: bool = False) -> ScratchDevice:
        """Check the device (``DeviceRefused``); put its wipe into the ledger."""
        check_scratch_device(host, path, overwrite_existing=overwrite_existing)
        device = cls(host, path)
        ledger.add(f"wipe {path}", device.wipe)
        return device

    def formatting(self, uuid: str) -> str:
        """Note the UUID a backend is about to give the device's filesystem (or LVM physical
        volume): cleanup wipes the device only when it carries that UUID, also after a
        format that failed halfway."""
        self.uuid = uuid
        return uuid

    def wipe(self) -> None:
        """Remove this run's signature; refuse while the device is in use anywhere."""
        if self.uuid is None:
            return  # nothing of ours was ever written
        found = signature(self.host, self.path)
        if found is None:
            return  # nothing there (never written, or removed: pvremove, say)
        if found.uuid != self.uuid:
            log.warning("%s: not wiping %s: it holds %s, not the UUID %s this run wrote",
                        self.host.name, self.path, found, self.uuid)
            return
        reasons = in_use(self.host, self.path)
        if reasons:
            raise DeviceRefused(f"{self.host.name}: not wiping {self.path}: "
                                f"{'; '.join(reasons)}")
        self.host.run("wipefs -a -q", self.path, sudo=True, check=True, timeout=60)
        log.info("%s: wiped %s (%s)", self.host.name, self.path, found)
