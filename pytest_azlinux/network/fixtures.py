"""Fixtures of the network suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..analyse.iperf import Spread, spread
from ..session import AzlSession, SelectedTarget
from .iperf import IperfParams, measure
from .settings import NetworkSettings

Reference = Callable[[], Spread | None]


@pytest.fixture
def azl_network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    """The target's ``suites.network`` (validated at start-up: a bad value stops the run)."""
    return azl_target.settings_for(NetworkSettings)


@pytest.fixture(scope="session")
def _azl_loopback_figures() -> dict[str, Spread]:
    return {}


@pytest.fixture
def azl_network_reference(
    azl_network_settings: NetworkSettings, azl_target: SelectedTarget, azl_session: AzlSession,
    _azl_loopback_figures: dict[str, Spread],
) -> Reference:
    """``reference()``: the target's loopback TCP throughput, or None where ``reference`` is
    none. Every host of the target measures TCP to itself (one stream, ``repetitions`` times)
    once per run; the figure is the median of all those runs and their range. One figure for
    the target, not one per host: the hosts of a lab share one machine, and a single host's
    two short runs move more than the machine does."""
    settings = azl_network_settings

    def reference() -> Spread | None:
        if settings.reference == "none":
            return None
        if azl_target.name not in _azl_loopback_figures:
            params = IperfParams(duration=settings.duration, omit=settings.omit)
            hosts = [azl_session.host(p) for p in azl_session.params if p.target is azl_target]
            values = [r.throughput_gbps for host in hosts
                      for r in measure(host, host, params, repetitions=settings.repetitions,
                                       address="127.0.0.1")]
            _azl_loopback_figures[azl_target.name] = spread(values)
        return _azl_loopback_figures[azl_target.name]

    return reference
