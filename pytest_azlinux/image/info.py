"""What an image target learned while booting, as plain data (no lab import: suites read it).

``BootInfo`` travels in the image target's context: ``azl_target.context.boot_info(host)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class BootInfo:
    """One booted instance: the file, how long it took, what the file claimed."""

    image: str  # the image file as given
    format: str  # qemu's format name (qcow2, raw, vpc, vhdx)
    firmware: str
    accel: str  # kvm or tcg
    sshd_seconds: float  # qemu started -> sshd sent its banner
    # qemu started -> provisioned: `cloud-init status --wait` returned (cloud-init), or
    # the login user logged in and Ignition's result file was read (ignition)
    provisioned_seconds: float
    # cloud-init's last status line (done, error, degraded...), or Ignition's verdict
    # ("done": it ran on this boot with the run's config; else what its result file says)
    provisioned_status: str
    # os-release read from the file before boot (key -> value), or why it was not read
    claimed: Mapping[str, str] = field(default_factory=dict)
    claimed_skipped: str = ""
    provisioning: str = "cloud-init"  # or "ignition"
    provisioning_why: str = "given"  # what decided it (docs/image-files.md)
    tpm: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BootInfo:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


@runtime_checkable
class BootInfoSource(Protocol):
    """The context of an image target."""

    def boot_info(self, host: str) -> BootInfo | None: ...
