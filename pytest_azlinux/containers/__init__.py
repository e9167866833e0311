"""Containers for the escape probe: OCI configs per profile, runtime detection, runc runs."""

from __future__ import annotations

from .oci import HostLayout, Variation, build_config
from .runc import ContainerRun, RuncProbe
from .runtime import RuntimeInfo, detect_runtimes, skip_reason, usable_runc

__all__ = [
    "ContainerRun", "HostLayout", "RuncProbe", "RuntimeInfo", "Variation", "build_config",
    "detect_runtimes", "skip_reason", "usable_runc",
]
