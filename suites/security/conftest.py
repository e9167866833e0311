"""Security suites: SELinux fixtures and the per-test denial watcher."""

from __future__ import annotations

import pytest

from pytest_azlinux.selinux.fixtures import register_plugin


def pytest_configure(config: pytest.Config) -> None:
    # registers azl_selinux, the watcher and the azl_selinux_watch marker (once per run)
    register_plugin(config)
