"""Fixtures of the network suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

import pytest

from ..session import SelectedTarget
from .settings import NetworkSettings


@pytest.fixture
def azl_network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    """The target's ``suites.network`` (validated at start-up: a bad value stops the run)."""
    return azl_target.settings_for(NetworkSettings)
