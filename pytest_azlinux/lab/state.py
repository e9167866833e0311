"""The lab's state file (``<state_dir>/state.json``): what was made, so down can undo it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LabHost:
    """One lab host: a network + mount + UTS namespace running sshd."""

    name: str  # also its hostname and the test id
    index: int
    variant: str
    address: str
    netns: str
    veth: str  # the machine's end of its link, on the bridge
    dir: str  # private state: etc overlay, /var/log, /home, /run, disk image
    loop: str | None = None  # its scratch disk, /dev/loopN
    holder_pid: int | None = None  # the process that keeps its mount + UTS namespace
    faults: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def disk_image(self) -> Path:
        return self.path / "disk.img"

    @property
    def sshd_pid_file(self) -> Path:
        return self.path / "run" / "sshd.pid"  # /run/sshd.pid inside the host

    @property
    def host_key_pub(self) -> Path:
        return self.path / "etc-upper" / "ssh" / "azl_host_ed25519_key.pub"


@dataclass
class LabState:
    """Everything one lab made on this machine."""

    name: str
    subnet: str
    bridge: str
    bridge_address: str
    uid: int  # azureuser's uid/gid on every host
    disk_size: int
    hosts: list[LabHost] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        hosts = [LabHost(**h) for h in data.pop("hosts", [])]
        return cls(**data, hosts=hosts)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)

    def host(self, name: str) -> LabHost | None:
        return next((h for h in self.hosts if h.name == name), None)
