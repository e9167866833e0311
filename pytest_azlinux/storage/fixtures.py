"""Fixtures of the storage suite (registered by the plugin, so users' suites get them too)."""

from __future__ import annotations

import pytest

from ..session import SelectedTarget
from .settings import StorageSettings


@pytest.fixture
def azl_storage_settings(azl_target: SelectedTarget) -> StorageSettings:
    """The target's ``suites.storage`` (validated at start-up: a bad value stops the run)."""
    return azl_target.settings_for(StorageSettings)
