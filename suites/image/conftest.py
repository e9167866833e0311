"""The image suite's package query joins the prepare pass: fetched for every host while the
session prepares the hosts concurrently, not one host at a time when each host's
``test_package_versions`` comes up (on a pool, a round trip per node in sequence)."""

from __future__ import annotations

import contextlib

import pytest

from pytest_azlinux.host import Host
from pytest_azlinux.posture import gather
from pytest_azlinux.profiles.fixtures import host_profile
from pytest_azlinux.reads import warm_on_prepare
from pytest_azlinux.runstate import SESSION_KEY


def pytest_configure(config: pytest.Config) -> None:
    def fetch_packages(host: Host) -> None:
        azl = config.stash.get(SESSION_KEY, None)
        if azl is None:
            return
        # No profile (or a bad one) is the test's to report, with its own message.
        with contextlib.suppress(pytest.fail.Exception):
            profile = host_profile(config, host, azl.target(host.spec.target))
            if profile.packages:
                gather.installed_packages(host, [p.name for p in profile.packages])

    warm_on_prepare(fetch_packages)
