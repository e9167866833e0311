"""Fixtures of the network suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

import pytest

from ..session import SelectedTarget
from .iperf import IperfParams
from .settings import NetworkSettings


@pytest.fixture
def azl_network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    """The target's ``suites.network`` (validated at start-up: a bad value stops the run)."""
    return azl_target.settings_for(NetworkSettings)


@pytest.fixture
def azl_network_reference(azl_network_settings: NetworkSettings) -> IperfParams | None:
    """The reference run of the target's TCP tests, or None where ``reference`` is none.

    With ``reference: loopback``, each repetition of a TCP test is preceded by one run of
    this (TCP, the same duration, as many streams as the test) from the client to itself
    over 127.0.0.1, and
    the test records the share of each repetition in its own reference run: both sides are
    measured with repetitions, side by side in time, so the ratio carries the noise of both
    and not a load change between a reference taken once and the measurement.
    """
    settings = azl_network_settings
    if settings.reference == "none":
        return None
    return IperfParams(duration=settings.duration, omit=settings.omit)
