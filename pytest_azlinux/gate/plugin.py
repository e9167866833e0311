"""The gate's pytest hooks: waivers, sentinels and reruns (one plugin object per process).

``register(config, azl, targets)`` is called by the main plugin once a target is selected,
in the controller and in every xdist worker: tests run (and are judged) where they run; the
controller reads what happened off the reports (``summary.GateLedger``). The behaviour lives
in ``waiving.py``, ``windows.py`` (sentinels) and ``reruns.py``.

Waivers come from the users' file (loaded here, at configure: a mistake is a usage error
before anything starts) and from the selected targets themselves: a target whose context
ships waivers (``ShipsWaivers``: the lab's hosts are Debian under Azure Linux identity files,
so some checks fail there by design) adds them once it is resolved, at session start. The
gate knows no target kind by name.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from .. import acceptance
from ..errors import WaiversError
from ..report.model import OUTCOME_FINDING, PROP_OUTCOME, is_waived
from ..session import AzlSession, SelectedTarget
from ..targets import TargetsFile
from .options import reruns_option
from .reruns import RERUN, Rerunner, keep_higher_scopes, pending_rerun
from .summary import GateLedger
from .waivers import WaiverSet, find_waivers_file, load_waivers
from .waiving import apply_waivers
from .windows import SentinelWindows, opted_out

PLUGIN_NAME = "azl-gate"
LEDGER_NAME = "azl-gate-ledger"


@runtime_checkable
class ShipsWaivers(Protocol):
    """A target context that brings waivers of its own: known deviations, by design, of the
    hosts it makes (scoped to the targets that use it)."""

    def builtin_waivers(self) -> Path:
        """The waivers file (the users' format, ``gate/waivers.py``)."""
        ...


def register(config: pytest.Config, azl: AzlSession, targets: TargetsFile) -> None:
    """Load the users' waivers (a usage error when invalid) and register the gate's hooks."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    try:
        waivers = users_waivers(config, targets)
    except WaiversError as exc:
        raise pytest.UsageError(str(exc)) from None
    ledger = None
    if not hasattr(config, "workerinput"):
        ledger = GateLedger(waivers, list(azl.target_names), acceptance.today)
    gate = Gate(azl, waivers, Rerunner(azl, reruns_option(config)), ledger)
    config.pluginmanager.register(gate, PLUGIN_NAME)
    if ledger is not None:
        config.pluginmanager.register(ledger, LEDGER_NAME)


def users_waivers(config: pytest.Config, targets: TargetsFile) -> WaiverSet:
    """The users' waivers file (option, ini, beside the targets file), if there is one."""
    path = find_waivers_file(
        config.getoption("azl_waivers", None), config.getini("azl_waivers_file"),
        targets.path, config.rootpath,
    )
    return load_waivers(path, acceptance.today()) if path is not None else WaiverSet()


def targets_waivers(selected: list[SelectedTarget]) -> WaiverSet:
    """The waivers the resolved targets ship, each file once, scoped to its targets."""
    users: dict[Path, list[SelectedTarget]] = {}
    for target in selected:
        if isinstance(target.context, ShipsWaivers):
            users.setdefault(target.context.builtin_waivers(), []).append(target)
    found = WaiverSet()
    for path, using in users.items():
        label = f"{using[0].kind}:{path.name}"
        names = [t.name for t in using]
        own = load_waivers(path, acceptance.today(), label=label, targets=names)
        found = found + own.as_shipped()
    return found


class Gate:
    """The hooks of one pytest process."""

    def __init__(
        self, azl: AzlSession, waivers: WaiverSet, rerunner: Rerunner,
        ledger: GateLedger | None = None,
    ) -> None:
        self.azl = azl
        self.waivers = waivers
        self.rerunner = rerunner
        self.windows = SentinelWindows(azl)
        self.ledger = ledger

    # After the main plugin's (tryfirst) session start: the targets are resolved.
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        try:
            shipped = targets_waivers(self.azl.selected)
        except WaiversError as exc:
            raise pytest.UsageError(str(exc)) from None
        if shipped:
            self.waivers = self.waivers + shipped
            if self.ledger is not None:
                self.ledger.waivers = self.waivers

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            opted_out(item)  # a misspelt sentinel name is a usage error before anything runs

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if self.rerunner.reruns <= 0:
            return None
        return self.rerunner.protocol(item, nextitem)

    # Not tryfirst: after pytest's skip markers (a skipped test touches no host), before the
    # runner sets up the test's fixtures (registered earlier, so called later).
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.windows.open(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        __tracebackhide__ = True  # a finding is its message, not the plugin's frames
        if pending_rerun(item):  # the next attempt's window continues this one
            yield from keep_higher_scopes(item)
            return None
        try:
            result = yield
        except BaseException:
            self.windows.close(item, raise_findings=False)
            raise
        self.windows.close(item, raise_findings=True)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "setup":
            self.windows.setup_reported(item, report)
        if call.when in ("setup", "call"):
            self.rerunner.judge(item, call, report)
            if not pending_rerun(item):
                apply_waivers(self.waivers, item, call, report)
        if call.when == "call":
            self.windows.call_reported(item, report)  # after waivers: a waived failure is
            # no failure here, so its findings still fail it (findings are never waived)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        if report.outcome == RERUN:
            return RERUN, "R", ("RERUN", {"yellow": True})
        if report.when == "call" and is_waived(report.skipped, report.user_properties):
            return "waived", "w", ("WAIVED", {"yellow": True})
        if report.when == "teardown" and report.failed and (
            PROP_OUTCOME, OUTCOME_FINDING) in report.user_properties:
            return "failed", "F", ("FAILED", {"red": True})
        return None
