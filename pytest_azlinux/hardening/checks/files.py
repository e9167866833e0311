"""Files and mounts: modes and owners, mount options, the world-writable scan."""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import Field

from ..base import Strict, Verdict
from ..evidence import Evidence
from ..readplan import SCAN_TIMEOUT, ReadPlan
from .common import IfAbsent, Ownership, describe_stat, shorten, unavailable


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
        plan.need("mounts")

    def reads(self) -> str:
        return f"`/proc/self/mounts` (the mount holding {self.path})"

    def expects(self) -> str:
        if self.separate:
            return f"{self.path} is a mount point of its own"
        return f"{self.path} mounted with {','.join(self.options)}"

    def judge(self, ev: Evidence) -> Verdict:
        expected = self.expects()
        mount = ev.mount_of(self.path)
        if mount is None:
            return unavailable("cannot read /proc/self/mounts", expected)
        where = f"{self.path} is on {mount.target} ({mount.fstype} {','.join(mount.options)})"
        if self.separate:
            return Verdict.judged(mount.target == self.path, where, expected)
        missing = [o for o in self.options if o not in mount.options]
        if missing:
            where += f": missing {','.join(missing)}"
        return Verdict.judged(not missing, where, expected)


class WorldWritableCheck(Strict):
    """One ``find`` over the system paths (see evidence.SYSTEM_PATHS and SCAN_PRUNE)."""

    kind: Literal["world_writable"]
    what: Literal["dirs_without_sticky", "files"]

    def plan(self, plan: ReadPlan) -> None:
        plan.need("scan")

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
        scan = ev.scan
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
