"""The image suite's pytest side: its reads, fetched for every host it runs on while the
session prepares the hosts (concurrently, in the same pass as the connect), not one host at
a time when each host's first image test comes up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import pytest

from ..errors import TargetsError
from ..host import Host
from ..profiles.fixtures import azl_profile as azl_profile  # the suite's fixture, registered here
from ..profiles.fixtures import host_profile
from ..reads import Read
from ..runstate import SESSION_KEY, item_host
from ..session import AzlSession
from . import gather
from .support import parse_day

MARKER = "azl_image"


@dataclass(frozen=True, eq=False)
class ImageReads:
    """A ``ReadSource``: the posture reads and the package queries of the host's profile."""

    config: pytest.Config
    session: AzlSession
    hosts: Collection[tuple[str, str]]  # (target, host name) of the hosts with image tests

    def __call__(self, host: Host) -> list[Read]:
        if (host.spec.target, host.spec.name) not in self.hosts:
            return []
        return gather.reads_ahead(host, lambda: self._package_names(host))

    def _package_names(self, host: Host) -> list[str]:
        try:  # no profile (or a bad one) is the test's to report, with its own message
            profile = host_profile(self.config, host, self.session.target(host.spec.target))
        except (pytest.fail.Exception, TargetsError):
            return []
        return [p.name for p in profile.packages]


def pytest_collection_finish(session: pytest.Session) -> None:
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is None:
        return
    hosts = set()
    for item in session.items:
        param = item_host(item)
        if param is not None and item.get_closest_marker(MARKER) is not None:
            hosts.add((param.target.name, param.spec.name))
    if hosts:
        azl.read_ahead(ImageReads(session.config, azl, frozenset(hosts)))


def run_day(config: pytest.Config) -> dt.date:
    """The day support windows are judged on: ``--azl-today``, else the ini value
    ``azl_today``, else today (UTC). A bad value is a usage error (exit 4), one line."""
    raw = config.getoption("azl_today", default=None)
    where = "--azl-today"
    if not raw:
        try:
            raw = config.getini("azl_today")
        except ValueError:  # not registered: the plugin is not the one that loaded us
            raw = ""
        where = "ini azl_today"
    if not raw:
        return dt.datetime.now(dt.UTC).date()
    try:
        return parse_day(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None


@pytest.fixture(scope="session")
def azl_today(pytestconfig: pytest.Config) -> dt.date:
    """The day the run judges support windows on (``--azl-today`` for reproducible runs)."""
    return run_day(pytestconfig)
