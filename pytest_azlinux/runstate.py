"""The run's state in pytest's stashes: every ``StashKey`` of the package is defined here.

The config's stash holds what one process owns for the run (its session, report collector,
the suites' run-wide state); a test item's stash holds what the test runs
against (its host and target, set once at collection from the values the test was
parametrized with) and the state a plugin keeps per test. Nothing parses these back out of
a node id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .report.collector import ImageReport, ReportCollector
from .session import AzlSession, HostParam, SelectedTarget

if TYPE_CHECKING:  # named in the keys' types as strings (the modules import this one)
    from .gate.reruns import RerunState  # noqa: F401
    from .gate.windows import _Window  # noqa: F401
    from .hardening.baseline import HostBaseline
    from .hardening.model import Control
    from .selinux.fixtures import _RunState, _Watch  # noqa: F401

# -- the config's stash: one per process ------------------------------------------------------
SESSION_KEY = pytest.StashKey[AzlSession]()
COLLECTOR_KEY = pytest.StashKey[ReportCollector]()  # the controller's per-image reports
WRITTEN_KEY = pytest.StashKey[list[ImageReport]]()  # the reports written at the end
SELINUX_STATE_KEY = pytest.StashKey["_RunState"]()  # the SELinux suite's run-wide state
BASELINES_KEY = pytest.StashKey[dict[str, "HostBaseline"]]()  # hardening: one read per host
# the markers of suites that need a running host -> (suite, what it does there)
LIVE_MARKERS_KEY = pytest.StashKey[dict[str, tuple[str, str]]]()
# hardening: host id -> the controls collected for it (after -k/-m), by id
COLLECTED_KEY = pytest.StashKey[dict[str | None, dict[str, "Control"]]]()

# hosts whose image record (facts and packages) this process has sent with a test report
IMAGE_RECORDED_KEY = pytest.StashKey[set[str]]()

# -- a test item's stash ----------------------------------------------------------------------
HOST_KEY = pytest.StashKey[HostParam]()  # the test's host (for a pair: the first)
HOSTS_KEY = pytest.StashKey[tuple[HostParam, ...]]()  # every host the test uses (a pair: 2)
TARGET_KEY = pytest.StashKey[SelectedTarget]()  # the test's target, when it has one
CONTROL_KEY = pytest.StashKey["Control"]()  # the hardening control the test checks
SELINUX_WATCH_KEY = pytest.StashKey["_Watch"]()  # the denial watcher of the test
WINDOW_KEY = pytest.StashKey["_Window"]()  # the gate's sentinel window of the test
ATTEMPT_KEY = pytest.StashKey["RerunState"]()  # the gate's attempts of the test

PARAM_NAMES = ("azl_host", "azl_host_pair", "azl_hosts")  # what tests are parametrized over


def item_host(item: pytest.Item) -> HostParam | None:
    return item.stash.get(HOST_KEY, None)


def item_hosts(item: pytest.Item) -> tuple[HostParam, ...]:
    return item.stash.get(HOSTS_KEY, ())


def item_target(item: pytest.Item) -> SelectedTarget | None:
    return item.stash.get(TARGET_KEY, None)


def bind_item(item: pytest.Item, azl: AzlSession) -> bool:
    """Carry the test's hosts and target on the item, from the values it was parametrized
    with (read here, once). False for pytest's placeholder of an empty parameter set, which
    only sharding makes (a target has at least one host): such an item is not this shard's.
    """
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    pair = params.get("azl_host_pair")
    host = params.get("azl_host")
    hosts: tuple[HostParam, ...] = ()
    if isinstance(pair, tuple):
        hosts = tuple(p for p in pair if isinstance(p, HostParam))
    elif isinstance(host, HostParam):
        hosts = (host,)
    name = next((n for n in PARAM_NAMES if n in params), None)
    if name is not None and not isinstance(params[name], HostParam | tuple | SelectedTarget):
        return False
    if hosts:
        item.stash[HOST_KEY] = hosts[0]
        item.stash[HOSTS_KEY] = hosts
        item.stash[TARGET_KEY] = hosts[0].target
    elif isinstance(params.get("azl_hosts"), SelectedTarget):
        item.stash[TARGET_KEY] = params["azl_hosts"]
    elif len(azl.selected) == 1:
        item.stash[TARGET_KEY] = azl.selected[0]
    return True
