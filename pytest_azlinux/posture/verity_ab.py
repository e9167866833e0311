"""/usr under dm-verity from one of two A/B slots: verified, read-only, the active slot named.

One read (as root, for ``dmsetup``) finds the device-mapper device named ``usr`` in sysfs and
prints, as ``==>`` sections: the kernel's verity status (``dmsetup status usr``: ``<start>
<length> verity V|C [...]``; V = every block read so far matched its hash, C = corruption
seen), the device's ``ro`` flag, the ``uevent`` of each device below it (a GPT partition's
``PARTNAME=`` is its label: USR-A or USR-B, matched by label, not number) and, where the image
writes one, ``/run/acl/active-volume``.

Sources: the kernel's drivers/md/dm-verity-target.c (``verity_status``: the V/C field) and
Documentation/admin-guide/device-mapper/verity.rst; block/partitions/core.c (``part_uevent``:
``PARTNAME`` from the GPT partition name); Flatcar's partition table (USR-A, USR-B).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ProbeUnavailable
from ..host import Host
from ..profiles.model import Profile
from ..reads import Read, split_sections
from .findings import Finding

ACTIVE_VOLUME = "/run/acl/active-volume"
SLOTS = ("USR-A", "USR-B")
# exit 3: no device-mapper device named usr
USR_VERITY = Read(
    "PATH=$PATH:/usr/sbin:/sbin\n"
    "dm=; for d in /sys/block/dm-*; do [ \"$(cat \"$d/dm/name\" 2>/dev/null)\" = usr ] && "
    "dm=${d##*/}; done\n"
    "[ -n \"$dm\" ] || exit 3\n"
    "printf '==> device %s\\n' \"$dm\"\n"
    "printf '==> status\\n'; dmsetup status usr 2>&1\n"
    "printf '==> ro\\n'; cat \"/sys/block/$dm/ro\"\n"
    "for s in /sys/block/$dm/slaves/*; do [ -e \"$s\" ] || continue\n"
    "  printf '==> slave %s\\n' \"${s##*/}\"; cat \"$s/uevent\"; done\n"
    f"[ -e {ACTIVE_VOLUME} ] && {{ printf '==> active-volume\\n'; cat {ACTIVE_VOLUME}; }}\n"
    "exit 0",
    sudo=True,
)
READS = (USR_VERITY,)


@dataclass(frozen=True)
class UsrVerity:
    """The ``usr`` mapping as the kernel shows it."""

    device: str  # dm-0
    target: str  # "verity"
    status: str  # "V" / "C"
    read_only: bool
    partitions: tuple[tuple[str, str], ...]  # (sda3, PARTNAME or "")
    active_volume: str | None  # the text of /run/acl/active-volume

    @property
    def slot_by_label(self) -> tuple[str, str] | None:
        """(USR-A|USR-B, the partition) of the device under the mapping, by its label."""
        found = [(label, part) for part, label in self.partitions if label in SLOTS]
        return found[0] if len(found) == 1 else None

    @property
    def slot_by_file(self) -> str | None:
        """The slot /run/acl/active-volume names (USR-A/USR-B, a or b), normalised."""
        if self.active_volume is None:
            return None
        m = re.search(r"\b(?:usr-)?([ab])\b", self.active_volume.strip(), re.IGNORECASE)
        return f"USR-{m.group(1).upper()}" if m else None

    def slot(self) -> tuple[str | None, str]:
        """(slot, where it was read) — the partition label first, then the ACL file."""
        by_label = self.slot_by_label
        if by_label is not None:
            return by_label[0], f"PARTNAME of /dev/{by_label[1]} under /dev/{self.device}"
        if self.slot_by_file is not None:
            return self.slot_by_file, ACTIVE_VOLUME
        return None, "no partition labelled USR-A/USR-B under the mapping, no " + ACTIVE_VOLUME


def parse_dm_status(line: str) -> tuple[str, str]:
    """``0 1712128 verity V`` -> (target, status field). Raises ValueError if not that."""
    fields = line.split()
    if len(fields) < 4 or not fields[0].isdigit() or not fields[1].isdigit():
        raise ValueError(f"dmsetup status usr: not '<start> <length> <target> <status>': "
                         f"{line.strip()[:100]!r}")
    return fields[2], fields[3]


def parse_usr_verity(text: str) -> UsrVerity:
    """The sections of ``USR_VERITY``; ValueError naming what is missing or garbled."""
    sections = split_sections(text)
    device = sections.get("device")
    status = sections.get("status")
    ro = sections.get("ro")
    if device is None or status is None or ro is None:
        missing = [n for n in ("device", "status", "ro") if n not in sections]
        raise ValueError(f"the /usr verity read is cut short (no {', '.join(missing)})")
    lines = [ln for ln in status.lines if ln.strip()]
    if len(lines) != 1:
        raise ValueError(f"dmsetup status usr: expected one line (one target), got "
                         f"{len(lines)}: {status.text[:120]!r}")
    target, state = parse_dm_status(lines[0])
    if ro.text not in ("0", "1"):
        raise ValueError(f"/sys/block/{device.args}/ro: {ro.text[:20]!r} is not 0 or 1")
    parts = []
    for part, lines_below in _slaves(text):
        label = next((ln.partition("=")[2] for ln in lines_below if ln.startswith("PARTNAME=")), "")
        parts.append((part, label))
    active = sections.get("active-volume")
    return UsrVerity(device.args, target, state, ro.text == "1", tuple(parts),
                     None if active is None else active.text)


def _slaves(text: str) -> list[tuple[str, list[str]]]:
    """Every ``==> slave NAME`` section in order (split_sections keeps only the last)."""
    out: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("==> "):
            name, _, args = line[4:].partition(" ")
            current = [] if name == "slave" else None
            if current is not None:
                out.append((args.strip(), current))
        elif current is not None:
            current.append(line)
    return out


def usr_verity(host: Host) -> UsrVerity | None:
    """The ``usr`` mapping, or None where there is none (a finding, not an error)."""
    result = host.reads.get(USR_VERITY)
    if result.rc == 3:
        return None
    if result.rc != 0:
        raise ProbeUnavailable(f"{host.name}: reading the /usr device-mapper state failed "
                               f"(exit {result.rc}): {result.stderr.strip()[:200]}")
    try:
        return parse_usr_verity(result.stdout)
    except ValueError as exc:
        raise ProbeUnavailable(f"{host.name}: {exc}") from None


def check_verity_ab(usr: UsrVerity | None, profile: Profile) -> list[Finding]:
    src = profile.source("verity_ab")
    if usr is None:
        return [Finding("usr.verity", "a device-mapper device named usr (dm-verity)",
                        "no /dev/mapper/usr", src)]
    out = []
    if usr.target != "verity":
        out.append(Finding("usr.verity", "dmsetup status usr: target verity",
                           f"target {usr.target}", src))
    elif usr.status != "V":
        what = "C: corruption detected" if usr.status == "C" else usr.status
        out.append(Finding("usr.verity", "dmsetup status usr: V (verified)", what, src))
    if not usr.read_only:
        out.append(Finding("usr.read_only", f"/dev/{usr.device} read-only (ro=1)", "ro=0", src))
    slot, where = usr.slot()
    if slot is None:
        found = ", ".join(f"/dev/{p} PARTNAME={lbl or '(none)'}" for p, lbl in usr.partitions)
        out.append(Finding("usr.slot", "the active slot: USR-A or USR-B",
                           f"{where} ({found or 'no device under the mapping'})", src))
    elif usr.slot_by_label and usr.slot_by_file and usr.slot_by_file != slot:
        out.append(Finding("usr.slot", f"{ACTIVE_VOLUME} to name the booted slot {slot}",
                           f"it says {usr.active_volume!r}", src))
    return out
