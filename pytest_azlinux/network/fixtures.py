"""Fixtures of the network suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..analyse.iperf import Spread, spread
from ..host import Host
from ..session import SelectedTarget
from .iperf import IperfParams, measure
from .settings import NetworkSettings

Reference = Callable[[Host], Spread | None]


@pytest.fixture
def azl_network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    """The target's ``suites.network`` (validated at start-up: a bad value stops the run)."""
    return azl_target.settings_for(NetworkSettings)


@pytest.fixture(scope="session")
def _azl_loopback_figures() -> dict[str, Spread]:
    return {}


@pytest.fixture
def azl_network_reference(
    azl_network_settings: NetworkSettings, _azl_loopback_figures: dict[str, Spread]
) -> Reference:
    """``reference(host)``: the host's loopback TCP throughput (one stream, measured once per
    host and run, as many times as ``repetitions``), or None where ``reference`` is none."""
    settings = azl_network_settings

    def reference(host: Host) -> Spread | None:
        if settings.reference == "none":
            return None
        key = f"{host.spec.target}/{host.name}"
        if key not in _azl_loopback_figures:
            params = IperfParams(duration=settings.duration, omit=settings.omit)
            results = measure(host, host, params, repetitions=settings.repetitions,
                              address="127.0.0.1")
            _azl_loopback_figures[key] = spread([r.throughput_gbps for r in results])
        return _azl_loopback_figures[key]

    return reference
