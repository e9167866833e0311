"""The network suite's settings (target ``suites.network``) and its threshold verdicts.

The defaults decide something: UDP loss above ``max_udp_loss_pct`` (1 %) fails. Throughput
has a floor only where one is known: ``min_gbps``, ``baseline_gbps`` with ``tolerance``, or
``link_gbps`` (the path's nominal capacity, e.g. the VM size's expected bandwidth) times
``min_link_fraction``. Without any of them a throughput is recorded with the threshold
``none`` and the summary says it decided nothing.

The interface speed a host reports is not used as the link: on Azure it is the host NIC's
speed, not the VM's bandwidth cap, and on the lab's veth pairs it is a nominal figure.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ..analyse.iperf import Spread
from ..settings import SuiteSettings

DEFAULT_MAX_UDP_LOSS_PCT = 1.0


class NetworkSettings(SuiteSettings):
    """``suites.network`` of a target; every field optional."""

    suite: ClassVar[str] = "network"

    duration: int = Field(default=5, ge=1, le=600)
    omit: int = Field(default=1, ge=0, le=60)
    # azl report compare decides a change by a rank test over the repetitions of both runs:
    # 5 against 5 can reach p = 0.008, 3 against 3 never gets below 0.1 (inconclusive).
    repetitions: int = Field(default=5, ge=1, le=50)
    parallel_streams: int = Field(default=4, ge=2, le=128)
    udp_rate: str = Field(default="1G", pattern=r"^\d+(\.\d+)?[KMGkmg]?$")
    min_gbps: float | None = Field(default=None, ge=0)
    baseline_gbps: float | None = Field(default=None, gt=0)
    tolerance: float = Field(default=0.10, ge=0, lt=1)
    link_gbps: float | None = Field(default=None, gt=0)
    min_link_fraction: float = Field(default=0.5, gt=0, le=1)
    # None turns the limit off (the UDP test then decides nothing, and says so).
    max_udp_loss_pct: float | None = Field(default=DEFAULT_MAX_UDP_LOSS_PCT, ge=0, le=100)
    # "loopback": measure the hosts' TCP throughput to themselves (127.0.0.1) once per run
    # and gate compare on each pair's throughput as a share of it. For labs whose links
    # are veth pairs on one machine, where throughput follows the machine's CPU (load, a
    # cloud runner's steal time) from run to run: the same run's loopback figure cancels
    # that, and a slow link does not touch loopback. Not for real hosts: it would cancel a
    # slower network stack of a new image as well.
    reference: Literal["none", "loopback"] = "none"
    # The relative change of the gated TCP throughput that compare takes as noise on this
    # target, where wider than compare's own tolerance (recorded with the metric).
    noise_tolerance: float | None = Field(default=None, gt=0, lt=1)


def throughput_floors(settings: NetworkSettings) -> list[tuple[float, str]]:
    """Every floor that applies, as (Gbit/s, where it comes from)."""
    floors = []
    if settings.min_gbps is not None:
        floors.append((settings.min_gbps, "suites.network.min_gbps"))
    if settings.baseline_gbps is not None:
        floors.append((settings.baseline_gbps * (1 - settings.tolerance),
                       f"{settings.tolerance:.0%} below suites.network.baseline_gbps "
                       f"{settings.baseline_gbps:g}"))
    if settings.link_gbps is not None:
        floors.append((settings.link_gbps * settings.min_link_fraction,
                       f"{settings.min_link_fraction:.0%} of suites.network.link_gbps "
                       f"{settings.link_gbps:g}"))
    return floors


def throughput_threshold(settings: NetworkSettings) -> str:
    """The throughput threshold as text for the report; ``none`` when nothing is set."""
    floors = throughput_floors(settings)
    if not floors:
        return "none"
    return "; ".join(f">= {gbps:.3g} Gbit/s ({source})" for gbps, source in floors)


def loss_threshold(settings: NetworkSettings) -> str:
    if settings.max_udp_loss_pct is None:
        return "none"
    return f"<= {settings.max_udp_loss_pct:g} % (suites.network.max_udp_loss_pct)"


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
    if settings.link_gbps is not None:
        lowest = settings.link_gbps * settings.min_link_fraction
        if measured.median < lowest:
            problems.append(
                f"{pair}: {what} {seen} is below {settings.min_link_fraction:.0%} of the "
                f"link's {settings.link_gbps:g} Gbit/s (minimum {lowest:.3g}; "
                "suites.network.link_gbps, min_link_fraction)")
    return problems


def loss_verdict(pair: str, rate: str, measured: Spread,
                 settings: NetworkSettings) -> str | None:
    """The UDP loss violation as a sentence, or None."""
    limit = settings.max_udp_loss_pct
    if limit is None or measured.median <= limit:
        return None
    return (f"{pair}: UDP at {rate}bit/s lost {measured.describe('%')}, above {limit:g}% "
            "(suites.network.max_udp_loss_pct)")
