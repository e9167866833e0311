"""Where a test item keeps its run state: the host and target it runs against.

The plugin sets these once, at collection, from the values the test was parametrized with;
fixtures, reports and the scheduler read them here. Nothing parses them out of a node id.
"""

from __future__ import annotations

import pytest

from .session import AzlSession, HostParam, SelectedTarget

SESSION_KEY = pytest.StashKey[AzlSession]()
HOST_KEY = pytest.StashKey[HostParam]()  # the test's host (for a pair: the first)
TARGET_KEY = pytest.StashKey[SelectedTarget]()  # the test's target, when it has one


def item_host(item: pytest.Item) -> HostParam | None:
    return item.stash.get(HOST_KEY, None)


def item_target(item: pytest.Item) -> SelectedTarget | None:
    return item.stash.get(TARGET_KEY, None)
