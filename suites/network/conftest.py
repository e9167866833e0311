"""Fixtures of the network suite: the target's settings."""

from __future__ import annotations

import pytest

from pytest_azlinux.errors import TargetsError
from pytest_azlinux.network.settings import NetworkSettings, load_settings
from pytest_azlinux.session import SelectedTarget


@pytest.fixture
def network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    try:
        return load_settings(azl_target.name, azl_target.settings("network"))
    except TargetsError as exc:
        raise pytest.UsageError(str(exc)) from None
