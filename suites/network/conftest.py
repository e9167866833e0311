"""Fixtures of the network suite: the target's settings."""

from __future__ import annotations

import pytest

from pytest_azlinux.errors import SettingsError
from pytest_azlinux.network.settings import NetworkSettings
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.settings import parse


@pytest.fixture
def network_settings(azl_target: SelectedTarget) -> NetworkSettings:
    try:
        return parse(NetworkSettings, azl_target.settings("network"), azl_target.name)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
