"""The escape suite's settings (``suites.escape``), shared by its host and pod variants.

The host variant (suites/security/test_escape.py, runc on each host) and the pod variant
(suites/cluster/test_escape_pods.py, a pod per profile on each node) read the same model:
``profiles`` selects the profiles both run, ``probe_arguments()`` is what both hand the probe.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from ..analyse.escape import PROFILES, Profile
from ..settings import SuiteSettings

_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:]+\](?::\d{1,5})?$")
# escape.sh's arguments (key=value); the typed fields below set most of them
PROBE_ARGUMENTS = (
    "imds", "wireserver", "kubelet", "wireserver_ports", "kubelet_ports", "mount_allow",
    "node_ip", "host_ns", "net_timeout",
)


class EscapeSettings(SuiteSettings):
    """``suites.escape`` of a target. Network checks run only against addresses set here."""

    suite: ClassVar[str] = "escape"

    imds_address: str | None = None  # HOST[:PORT], e.g. 169.254.169.254 on a real Azure VM
    wireserver_address: str | None = None  # HOST, e.g. 168.63.129.16 on a real Azure VM
    kubelet_address: str | None = None  # HOST: the node's IP as a pod sees it
    wireserver_ports: list[int] = Field(default_factory=lambda: [80, 32526])
    kubelet_ports: list[int] = Field(default_factory=lambda: [10250, 10255])
    node_ip: str | None = None  # a container holding exactly this address is on the host network
    profiles: list[Profile] = Field(default_factory=lambda: list(PROFILES))
    runc: str = "runc"
    timeout: float = Field(default=60.0, gt=0)  # seconds per container (or pod exec) run
    net_timeout: int = Field(default=1, ge=1, le=5)
    # How many times the probe runs per container profile for its run time
    # (escape_probe_ms): the first run's findings decide the test, every run's time is a
    # repetition azl report compare tests for a change (5 against 5 can reach p = 0.008;
    # fewer than 4 can never be significant). Each run is one container, about 1 s.
    timing_repetitions: int = Field(default=5, ge=1, le=50)
    # further probe arguments (escape.sh key=value), applied last, e.g. {host_ns: "..."}
    probe_args: dict[str, str] = Field(default_factory=dict)

    @field_validator("imds_address", "wireserver_address", "kubelet_address", "node_ip")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError(f"not an address (HOST or HOST:PORT): {value!r}")
        return value

    @field_validator("wireserver_ports", "kubelet_ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 0 < p < 65536]
        if bad:
            raise ValueError(f"ports out of range: {bad}")
        return value

    @field_validator("probe_args")
    @classmethod
    def _probe_args(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PROBE_ARGUMENTS))
        if unknown:
            raise ValueError(f"unknown probe argument(s) {', '.join(unknown)} "
                             f"(escape.sh takes {', '.join(PROBE_ARGUMENTS)})")
        return value

    def probe_arguments(self) -> dict[str, str]:
        """Arguments of escape.sh (``key=value``); unset addresses skip their check."""
        args = {
            "imds": self.imds_address, "wireserver": self.wireserver_address,
            "kubelet": self.kubelet_address, "node_ip": self.node_ip,
        }
        out = {k: v for k, v in args.items() if v}
        out["wireserver_ports"] = " ".join(map(str, self.wireserver_ports))
        out["kubelet_ports"] = " ".join(map(str, self.kubelet_ports))
        out["net_timeout"] = str(self.net_timeout)
        return {**out, **self.probe_args}
