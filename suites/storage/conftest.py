"""Fixtures of the storage suite: the target's settings."""

from __future__ import annotations

import pytest

from pytest_azlinux.errors import SettingsError
from pytest_azlinux.session import SelectedTarget
from pytest_azlinux.storage.settings import StorageSettings, storage_settings


@pytest.fixture(name="storage_settings")
def storage_settings_fixture(azl_target: SelectedTarget) -> StorageSettings:
    """The target's ``suites.storage``; a bad value is a one-line ERROR naming the field."""
    try:
        return storage_settings(azl_target)
    except SettingsError as exc:
        error = str(exc)
    pytest.fail(error, pytrace=False)  # outside the except: no chained exception shown
