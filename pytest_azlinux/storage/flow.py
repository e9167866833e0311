"""The snapshot flow: write known data, snapshot, change it, verify, roll back, verify.

It returns what it measured and every verification problem (file by file); the suite turns
problems into a FAIL. Infrastructure problems (device refused, a command failing) raise.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from ..analyse.fio import FioResult, parse_fio_json
from ..cleanup import CleanupLedger
from ..host import Host
from .backends import SnapshotBackend
from .device import check_scratch_device
from .verify import DatasetSpec, Manifest, compare_manifests, read_manifest, write_dataset_script

DATASET = "dataset"


@dataclass
class FlowResult:
    backend: str
    device: str
    snapshot_seconds: float = 0.0
    restore_seconds: float = 0.0
    fio: FioResult | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class SnapshotFlow:
    """One run of the flow on ``device`` of ``host`` with ``backend``."""

    host: Host
    device: str
    backend: SnapshotBackend
    ledger: CleanupLedger
    spec: DatasetSpec = field(default_factory=DatasetSpec)
    fio_seconds: int = 0  # background fio load around the snapshot (0 = none)
    live: str = ""
    snap: str = ""
    manifest: Manifest = field(default_factory=dict)

    def prepare(self) -> None:
        check_scratch_device(self.host, self.device)
        self.live = self.backend.prepare(self.host, self.device, self.ledger)
        self.host.run(write_dataset_script(f"{self.live}/{DATASET}", self.spec),
                      sudo=True, check=True, timeout=300)
        self.manifest = read_manifest(self.host, f"{self.live}/{DATASET}")

    def take_snapshot(self, result: FlowResult) -> None:
        fio_pid = self._start_fio() if self.fio_seconds else None
        start = time.monotonic()
        self.snap = self.backend.snapshot(self.host, self.ledger)
        result.snapshot_seconds = time.monotonic() - start
        if fio_pid is not None:
            result.fio = self._finish_fio(fio_pid)

    def verify(self, where: str, label: str) -> list[str]:
        actual = read_manifest(self.host, f"{where}/{DATASET}")
        return [f"{label}: {p}" for p in compare_manifests(self.manifest, actual)]

    def change_live_data(self) -> None:
        """Overwrite, delete and add files in the live tree (the snapshot must not move)."""
        root = shlex.quote(f"{self.live}/{DATASET}")
        self.host.run(
            f"cd {root} && for f in $(find . -type f | sort | head -n 6); do "
            f"head -c 4096 /dev/urandom | dd of=$f bs=4096 count=1 conv=notrunc 2>/dev/null; "
            f"done && find . -type f | sort | tail -n 4 | xargs rm -f && "
            f"head -c 8192 /dev/urandom > d0/added.bin && sync",
            sudo=True, check=True, timeout=120,
        )

    def rollback(self, result: FlowResult) -> None:
        start = time.monotonic()
        self.live = self.backend.rollback(self.host)
        result.restore_seconds = time.monotonic() - start

    def run(self) -> FlowResult:
        result = FlowResult(self.backend.name, self.device)
        self.prepare()
        self.take_snapshot(result)
        result.problems += self.verify(self.snap, "snapshot right after it was taken")
        self.change_live_data()
        if not self.verify(self.live, "live"):
            result.problems.append("live data did not change: the flow's changes were lost")
        result.problems += self.verify(self.snap, "snapshot after the live data changed")
        self.rollback(result)
        result.problems += self.verify(self.live, "live data after rollback")
        return result

    def _start_fio(self) -> int:
        load = shlex.quote(f"{self.live}/load")
        out = self.host.run(
            f"mkdir -p {load} && {{ fio --name=azl-load --directory={load} --size=64M "
            f"--rw=randrw --bs=4k --ioengine=psync --time_based --runtime={self.fio_seconds} "
            f"--output-format=json --output={load}/fio.json >/dev/null 2>&1 & }}; echo $!",
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
        self.host.run(f"rm -rf {load}", sudo=True)
        return parse_fio_json(text)
