"""The target's ``suites.escape`` settings: probe addresses, profiles to run, runc."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..analyse.escape import PROFILES, Profile
from ..errors import TargetsError

_ADDRESS = re.compile(r"^[A-Za-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:]+\](?::\d{1,5})?$")


class EscapeSettings(BaseModel):
    """``suites.escape`` of a target. Network checks run only against addresses set here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    imds_address: str | None = None  # HOST[:PORT], e.g. 169.254.169.254 on a real Azure VM
    wireserver_address: str | None = None  # HOST, e.g. 168.63.129.16 on a real Azure VM
    kubelet_address: str | None = None  # HOST: the node's IP as a pod sees it
    wireserver_ports: list[int] = Field(default_factory=lambda: [80, 32526])
    kubelet_ports: list[int] = Field(default_factory=lambda: [10250, 10255])
    node_ip: str | None = None  # a pod holding this address is on the host network
    profiles: list[Profile] = Field(default_factory=lambda: list(PROFILES))
    runc: str = "runc"
    timeout: float = Field(default=60.0, gt=0)
    net_timeout: int = Field(default=1, ge=1, le=5)

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

    def probe_args(self) -> dict[str, str]:
        """Arguments of escape.sh (``key=value``); unset addresses skip their check."""
        args = {
            "imds": self.imds_address, "wireserver": self.wireserver_address,
            "kubelet": self.kubelet_address, "node_ip": self.node_ip,
        }
        out = {k: v for k, v in args.items() if v}
        out["wireserver_ports"] = " ".join(map(str, self.wireserver_ports))
        out["kubelet_ports"] = " ".join(map(str, self.kubelet_ports))
        out["net_timeout"] = str(self.net_timeout)
        return out


def load_settings(raw: Any, target: str) -> EscapeSettings:
    """Validate ``suites.escape``; errors name the target and the field on one line."""
    try:
        return EscapeSettings.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(mapping)"
        raise TargetsError(
            f"target {target!r}: field 'suites.escape.{where}': {err['msg']}"
        ) from None
