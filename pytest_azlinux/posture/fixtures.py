"""The image suite's pytest side: its reads, fetched for every host it runs on while the
session prepares the hosts (concurrently, in the same pass as the connect), not one host at
a time when each host's first image test comes up."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pytest

from ..host import Host
from ..profiles.fixtures import azl_profile as azl_profile  # the suite's fixture, registered here
from ..reads import Read
from ..runstate import SESSION_KEY, item_host
from . import gather

MARKER = "azl_image"


@dataclass(frozen=True, eq=False)
class ImageReads:
    """A ``ReadSource``: the posture reads and the host's whole package inventory."""

    hosts: Collection[tuple[str, str]]  # (target, host name) of the hosts with image tests

    def __call__(self, host: Host) -> list[Read]:
        if (host.spec.target, host.spec.name) not in self.hosts:
            return []
        return gather.reads_ahead(host)


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
        azl.read_ahead(ImageReads(frozenset(hosts)))
