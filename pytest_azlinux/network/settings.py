"""The network suite's settings (target ``suites.network``) and its threshold verdicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..analyse.iperf import Spread
from ..errors import TargetsError


class NetworkSettings(BaseModel):
    """``suites.network`` of a target; every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration: int = Field(default=5, ge=1, le=600)
    omit: int = Field(default=1, ge=0, le=60)
    repetitions: int = Field(default=3, ge=1, le=20)
    parallel_streams: int = Field(default=4, ge=2, le=128)
    udp_rate: str = "1G"
    min_gbps: float | None = Field(default=None, ge=0)
    baseline_gbps: float | None = Field(default=None, gt=0)
    tolerance: float = Field(default=0.10, ge=0, lt=1)
    max_udp_loss_pct: float | None = Field(default=None, ge=0, le=100)


def load_settings(target_name: str, raw: dict[str, Any]) -> NetworkSettings:
    try:
        return NetworkSettings.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise TargetsError(
            f"target {target_name!r}: field 'suites.network.{field}': {err['msg']}"
        ) from None


def throughput_verdicts(pair: str, what: str, measured: Spread,
                        settings: NetworkSettings) -> list[str]:
    """Threshold violations as readable sentences (empty when all pass)."""
    problems = []
    seen = measured.describe("Gbit/s")
    if settings.min_gbps is not None and measured.median < settings.min_gbps:
        problems.append(f"{pair}: {what} {seen} is below the floor of "
                        f"{settings.min_gbps:g} Gbit/s (suites.network.min_gbps)")
    if settings.baseline_gbps is not None:
        lowest = settings.baseline_gbps * (1 - settings.tolerance)
        if measured.median < lowest:
            problems.append(
                f"{pair}: {what} {seen} is more than {settings.tolerance:.0%} below the "
                f"baseline of {settings.baseline_gbps:g} Gbit/s (minimum {lowest:.3g})")
    return problems
