"""The snapshot flow: write known data, snapshot, change the live data, restore, verify.

Each step compares a reading of the target with the manifest of the dataset the suite
generated, and the flow stops at the first step that finds a difference. It returns what it
measured and the differences (path by path); the suite turns them into a FAIL.
Infrastructure problems (device refused, a command failing) raise.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field, replace

from ..analyse.fio import FioResult, parse_fio_iops_log, parse_fio_json
from ..cleanup import CleanupLedger
from ..host import Host
from .backends import SnapshotBackend
from .dataset import Dataset, DatasetSpec, generate, write_dataset
from .device import ScratchDevice
from .verify import REGULAR, compare_manifests, read_manifest

DATASET = "dataset"
MAX_SHOWN = 20  # problems in a failure message


@dataclass
class FlowResult:
    backend: str
    device: str
    seed: int
    snapshot_seconds: float | None = None
    restore_seconds: float | None = None
    fio: FioResult | None = None
    problems: list[str] = field(default_factory=list)  # of the first step that found any
    not_compared: list[str] = field(default_factory=list)  # what this host cannot show

    def failure(self, host: str) -> str:
        """The FAIL message: where, with which data, and the differences."""
        shown = self.problems[:MAX_SHOWN]
        more = len(self.problems) - len(shown)
        return (f"{host} {self.device} ({self.backend}, dataset seed {self.seed}): "
                "data not preserved:\n  " + "\n  ".join(shown)
                + (f"\n  (and {more} more)" if more > 0 else ""))


@dataclass(frozen=True)
class Change:
    """One change the flow makes to the live data; the verification must name its path."""

    path: str
    what: str
    script: str  # run in the dataset's root


@dataclass
class SnapshotFlow:
    """One run of the flow on ``device`` of ``host`` with ``backend``."""

    host: Host
    device: str
    backend: SnapshotBackend
    ledger: CleanupLedger
    spec: DatasetSpec = field(default_factory=DatasetSpec)
    fio_seconds: int = 0  # background fio load around the snapshot (0 = none)
    overwrite_existing: bool = False  # format a device that holds a filesystem
    live: str = ""
    snap: str = ""
    data: Dataset = field(init=False)
    xattrs: bool = True  # extended attributes and ACLs written and compared
    not_compared: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = generate(self.spec)

    # -- the steps, in order ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Claim the device (refused unless free) and format it."""
        device = ScratchDevice.claim(self.host, self.device, self.ledger,
                                     overwrite_existing=self.overwrite_existing)
        self.live = self.backend.prepare(self.host, device, self.ledger)

    def write_known_data(self) -> None:
        """Write the generated dataset; stop expecting what the filesystem cannot keep."""
        if self.host.run("command -v python3", sudo=True).rc != 0:
            self.xattrs = False
            self.data = self.data.without_xattrs(None)
            self.not_compared.append("extended attributes and ACLs (no python3 on the host)")
        refused = write_dataset(self.host, f"{self.live}/{DATASET}", self.data,
                                xattrs=self.xattrs)
        if refused:
            self.data = self.data.without_xattrs(refused)
            self.not_compared.append(
                f"{', '.join(sorted(refused))} (the filesystem does not keep them)")

    def check_written(self) -> list[str]:
        """The host reads back exactly what was generated."""
        return self.verify(self.live, "data as written")

    def snapshot_and_check(self, result: FlowResult) -> list[str]:
        """Take the snapshot (under fio load if asked); it holds the data."""
        fio_pid = self._start_fio() if self.fio_seconds else None
        start = time.monotonic()
        self.snap = self.backend.snapshot(self.host, self.ledger)
        result.snapshot_seconds = time.monotonic() - start
        if fio_pid is not None:
            result.fio = self._finish_fio(fio_pid)
        return self.verify(self.snap, "snapshot right after it was taken")

    def change_and_check(self) -> list[str]:
        """Change the live data: each change is seen there, and the snapshot does not move."""
        changes = self.live_changes()
        root = shlex.quote(f"{self.live}/{DATASET}")
        self.host.run(f"set -e; cd {root}; " + "; ".join(c.script for c in changes) + "; sync",
                      sudo=True, check=True, timeout=120)
        seen = self.verify(self.live, "live")
        unseen = [f"live data after the changes: {c.path} ({c.what}) not detected"
                  for c in changes if not any(p.startswith(f"live: {c.path}: ") for p in seen)]
        return unseen or self.verify(self.snap, "snapshot after the live data changed")

    def restore_and_check(self, result: FlowResult) -> list[str]:
        """Roll back to the snapshot (only when it is there); the live data is the original."""
        missing = self.backend.snapshot_missing(self.host)
        if missing:
            return [f"restore: {missing}; the live data was left as it was"]
        start = time.monotonic()
        self.live = self.backend.rollback(self.host)
        result.restore_seconds = time.monotonic() - start
        return self.verify(self.live, "live data after rollback")

    def run(self) -> FlowResult:
        result = FlowResult(self.backend.name, self.device, self.data.seed)
        self.prepare()
        self.write_known_data()
        result.not_compared = self.not_compared
        for step in (self.check_written, lambda: self.snapshot_and_check(result),
                     self.change_and_check, lambda: self.restore_and_check(result)):
            result.problems = step()
            if result.problems:
                break
        return result

    # -- helpers ---------------------------------------------------------------------------------
    def verify(self, where: str, label: str) -> list[str]:
        actual = read_manifest(self.host, f"{where}/{DATASET}", xattrs=self.xattrs)
        return [f"{label}: {p}" for p in compare_manifests(self.data.manifest, actual)]

    def live_changes(self) -> list[Change]:
        """Content, mode, owner, mtime, a deletion, additions, a removed empty directory, a
        hard link replaced by an identical copy and, when compared, an attribute."""
        m = self.data.manifest
        linked = {p for e in m.values() for p in e.hardlinks}
        plain = [p for p, e in sorted(m.items())
                 if e.kind == REGULAR and not e.sparse and p not in linked and not e.xattrs
                 and p.startswith("d")]
        q = shlex.quote
        changes = [
            Change("d0/added.bin", "an added file", "head -c 8192 /dev/urandom > d0/added.bin"),
            Change("d0/added-link", "an added symlink", "ln -s f000.bin d0/added-link"),
            Change("d0/empty-inner", "a removed empty directory", "rmdir d0/empty-inner"),
            Change("links/hard-f001.bin", "a hard link replaced by a copy",
                   "cp -a links/hard-f001.bin links/copy && mv links/copy links/hard-f001.bin"),
        ]
        for path, (what, script) in zip(plain, (
                ("a changed block", "head -c 4096 /dev/urandom | "
                                    "dd of=%s bs=4096 count=1 conv=notrunc status=none"),
                ("mode 0777", "chmod 0777 %s"),
                ("owner root", "chown 0 %s"),
                ("an mtime", "touch -h -d @86400 %s"),
                ("a deletion", "rm %s")), strict=False):
            changes.append(Change(path, what, script % q(path)))
        if self.xattrs:
            first = next(p for p, e in sorted(m.items()) if e.xattrs and p.startswith("d"))
            name = sorted(m[first].xattrs or {})[0]
            changes.append(Change(first, f"xattr {name}", (
                "python3 -c 'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], b\"changed\")' "
                f"{q(first)} {q(name)}")))
        return changes

    def _start_fio(self) -> int:
        load = shlex.quote(f"{self.live}/load")
        out = self.host.run(
            f"mkdir -p {load} && {{ fio --name=azl-load --directory={load} --size=64M "
            f"--rw=randrw --bs=4k --ioengine=psync --time_based --runtime={self.fio_seconds} "
            f"--output-format=json --output={load}/fio.json "
            # IOPS of each second: the repetitions compare tests for a change
            f"--write_iops_log={load}/azl --log_avg_msec=1000 >/dev/null 2>&1 & }}; echo $!",
            sudo=True, check=True, timeout=30,
        )
        pid = int(out.stdout.split()[-1])
        self.ledger.add("stop fio", lambda: self.host.run(f"kill {pid} 2>/dev/null; true",
                                                          sudo=True))
        time.sleep(1)  # let the load ramp up before the snapshot
        return pid

    def _finish_fio(self, pid: int) -> FioResult:
        load = shlex.quote(f"{self.live}/load")
        # Done when gone or a zombie (a namespace's init need not reap it at once).
        self.host.run(f"while [ -e /proc/{pid} ] && ! grep -q '^State:.*Z' /proc/{pid}/status"
                      f" 2>/dev/null; do sleep 0.2; done",
                      sudo=True, timeout=self.fio_seconds + 60)
        text = self.host.run(f"cat {load}/fio.json", sudo=True, check=True).stdout
        log = self.host.run(f"cat {load}/azl_iops.1.log", sudo=True)
        self.host.run(f"rm -rf {load}", sudo=True)
        result = parse_fio_json(text)
        if log.rc != 0:  # an fio without the log: the summary alone, no repetitions
            return result
        per_second = parse_fio_iops_log(log.stdout)
        return replace(result, read_iops_samples=per_second["read"],
                       write_iops_samples=per_second["write"])
