"""Files and mounts: modes and owners, mount options, the world-writable scan."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ...posture.osguard import Mount, parse_mounts
from ..base import Strict, Verdict
from ..evidence import Evidence, to_int
from ..readplan import ReadPlan, SectionRead
from .common import IfAbsent, Ownership, describe_stat, shorten, unavailable

# Where the world-writable scan looks ("system paths"), and what it leaves out: container
# image layers and pod volumes are workload data, not the image's own files.
SYSTEM_PATHS = ("/bin", "/sbin", "/lib", "/lib64", "/usr", "/etc", "/boot", "/opt", "/var")
SCAN_PRUNE = (
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/kubelet/pods",
    "/var/lib/containers",
)
SCAN_LIMIT = 100  # paths listed per kind; the total count is always printed
SCAN_TIMEOUT = 30  # seconds for the find (the whole read has the host's command timeout)


@dataclass(frozen=True)
class ScanResult:
    dirs: tuple[str, ...]
    files: tuple[str, ...]
    total_dirs: int
    total_files: int


def mount_of(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that holds ``path``: the longest mount point above it, the last one
    mounted there when several are stacked."""
    best: Mount | None = None
    for m in mounts:
        target = m.mountpoint.rstrip("/") or "/"
        inside = path == target or path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) >= len(best.mountpoint.rstrip("/") or "/")):
            best = m
    return best


def parse_scan(text: str) -> ScanResult | None:
    """The scan's listing and totals (None: it did not finish, or hit its time limit)."""
    dirs: list[str] = []
    files: list[str] = []
    totals = {"dir": 0, "file": 0}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "exit" and rest.strip() in ("124", "137", "143"):
            return None  # find was stopped by its time limit
        if kind == "total":
            what, _, count = rest.partition(" ")
            totals[what] = to_int(count) or 0
        elif kind == "dir":
            dirs.append(rest)
        elif kind == "file":
            files.append(rest)
    if "total dir" not in text:
        return None  # the scan did not finish
    return ScanResult(tuple(dirs), tuple(files), totals["dir"], totals["file"])


def _scan_script() -> str:
    """One find over the system paths: world-writable directories without the sticky bit,
    and world-writable files (symlinks are always 0777 and left out). Bounded by
    ``SCAN_TIMEOUT`` so a huge file system costs these two controls, not the whole read;
    ``exit N`` is find's status (124: timed out)."""
    prune = " -o ".join(f"-path {p}" for p in SCAN_PRUNE)
    return (
        f"set --; for p in {' '.join(SYSTEM_PATHS)}; do "
        '[ -d "$p" ] && [ ! -L "$p" ] && set -- "$@" "$p"; done\n'
        f"t=; command -v timeout >/dev/null && t='timeout {SCAN_TIMEOUT}'\n"
        f'{{ $t find "$@" -xdev \\( {prune} \\) -prune -o \\( -perm -0002 ! -type l \\) '
        "\\( -type d ! -perm -1000 -printf 'dir %p\\n' -o -type f -printf 'file %p\\n' \\) "
        '2>/dev/null; echo "exit $?"; } '
        f"| awk '$1 == \"exit\" {{print; next}} {{n[$1]++; if (n[$1] <= {SCAN_LIMIT}) print}} "
        "END {print \"total dir\", n[\"dir\"]+0; print \"total file\", n[\"file\"]+0}'"
    )


MOUNTS = SectionRead("mounts", "cat /proc/self/mounts", lambda text: parse_mounts(text) or None)
SCAN = SectionRead("scan", _scan_script(), parse_scan)


class FileCheck(Ownership):
    """Mode and ownership of a file or directory (a shell pattern checks every match)."""

    kind: Literal["file"]
    path: str = Field(pattern=r"^/[A-Za-z0-9_./*?+-]+$")
    if_absent: IfAbsent = "fail"
    absent_means: str = ""

    def plan(self, plan: ReadPlan) -> None:
        plan.paths.add(self.path)

    def reads(self) -> str:
        return f"`stat {self.path}`"

    def expects(self) -> str:
        return self._expected(self.path)

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        if not ev.has("stat"):
            return unavailable("file modes were not read", expected)
        found = [st for path, st in ev.stats.items() if fnmatch.fnmatchcase(path, self.path)]
        if not found:
            if self.if_absent == "skip":
                return Verdict(
                    "not_applicable", f"{self.path} does not exist: {self.absent_means}", expected
                )
            return Verdict("failed", f"{self.path} does not exist", expected)
        bad = self._offending(found)
        shown = shorten(bad) if bad else shorten([describe_stat(st) for st in found])
        return Verdict.judged(not bad, shown, expected)


class MountCheck(Strict):
    """The mount that holds a path: its own mount point, or the options it must carry."""

    kind: Literal["mount"]
    path: str = Field(pattern=r"^/[A-Za-z0-9_./-]*$")
    options: list[str] = Field(default_factory=list)
    separate: bool = False

    def plan(self, plan: ReadPlan) -> None:
        plan.need(MOUNTS)

    def reads(self) -> str:
        return f"`/proc/self/mounts` (the mount holding {self.path})"

    def expects(self) -> str:
        if self.separate:
            return f"{self.path} is a mount point of its own"
        return f"{self.path} mounted with {','.join(self.options)}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        mounts = ev.get(MOUNTS)
        mount = mount_of(mounts or [], self.path)
        if mount is None:
            return unavailable("cannot read /proc/self/mounts", expected)
        where = f"{self.path} is on {mount.mountpoint} ({mount.fstype} {','.join(mount.options)})"
        if self.separate:
            return Verdict.judged(mount.mountpoint == self.path, where, expected)
        missing = [o for o in self.options if o not in mount.options]
        if missing:
            where += f": missing {','.join(missing)}"
        return Verdict.judged(not missing, where, expected)


class WorldWritableCheck(Strict):
    """One ``find`` over the system paths (see SYSTEM_PATHS and SCAN_PRUNE)."""

    kind: Literal["world_writable"]
    what: Literal["dirs_without_sticky", "files"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need(SCAN)

    def reads(self) -> str:
        return (
            "`find` over /usr, /etc, /boot, /opt, /var (one filesystem each; container and pod "
            "data left out)"
        )

    def expects(self) -> str:
        if self.what == "files":
            return "no world-writable regular files"
        return "no world-writable directories without the sticky bit"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        scan = ev.get(SCAN)
        if scan is None:
            return unavailable(
                f"the file system scan did not finish (time limit {SCAN_TIMEOUT} s)", expected
            )
        paths, total = (scan.files, scan.total_files) if self.what == "files" else (
            scan.dirs, scan.total_dirs
        )
        if total == 0:
            return Verdict("passed", "none found", expected)
        return Verdict("failed", f"{total} found: {shorten(list(paths))}", expected)
