"""The gate's pytest hooks: waivers, sentinels and reruns (one plugin object per process).

``register(config, azl, targets)`` is called by the main plugin once a target is selected,
in the controller and in every xdist worker: tests run (and are judged) where they run; the
controller reads what happened off the reports (``summary.GateLedger``). The behaviour lives
in ``waiving.py``, ``windows.py`` (sentinels) and ``reruns.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from .. import acceptance
from ..errors import WaiversError
from ..report.model import OUTCOME_FINDING, PROP_OUTCOME, is_waived
from ..session import AzlSession
from ..targets import TargetsFile
from .options import reruns_option
from .reruns import RERUN, Rerunner, keep_higher_scopes, pending_rerun
from .summary import GateLedger
from .waivers import WaiverSet, find_waivers_file, load_waivers
from .waiving import apply_waivers
from .windows import SentinelWindows, opted_out

PLUGIN_NAME = "azl-gate"
LEDGER_NAME = "azl-gate-ledger"
# Built-in waivers of a target kind: the lab's hosts are Debian under Azure Linux identity
# files, so some checks fail there by design.
KIND_WAIVERS = {"lab": ("pytest_azlinux.lab", "waivers.yaml")}


def register(config: pytest.Config, azl: AzlSession, targets: TargetsFile) -> None:
    """Load the waivers (a usage error when invalid) and register the gate's hooks."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    try:
        waivers = run_waivers(config, azl, targets)
    except WaiversError as exc:
        raise pytest.UsageError(str(exc)) from None
    gate = Gate(azl, waivers, Rerunner(azl, reruns_option(config)))
    config.pluginmanager.register(gate, PLUGIN_NAME)
    if not hasattr(config, "workerinput"):
        ledger = GateLedger(waivers, list(azl.target_names), acceptance.today)
        config.pluginmanager.register(ledger, LEDGER_NAME)


def run_waivers(config: pytest.Config, azl: AzlSession, targets: TargetsFile) -> WaiverSet:
    """The users' waivers file, then the built-in waivers of the selected targets' kinds."""
    today = acceptance.today()
    path = find_waivers_file(
        config.getoption("azl_waivers", None), config.getini("azl_waivers_file"),
        targets.path, config.rootpath,
    )
    found = load_waivers(path, today) if path is not None else WaiverSet()
    for kind, (package, name) in KIND_WAIVERS.items():
        names = [n for n in azl.target_names if targets.get(n).kind == kind]
        if names:
            builtin = _package_file(package, name)
            found = found + load_waivers(builtin, today, label=f"{kind}:{name}", targets=names)
    return found


def _package_file(package: str, name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / name


class Gate:
    """The hooks of one pytest process."""

    def __init__(self, azl: AzlSession, waivers: WaiverSet, rerunner: Rerunner) -> None:
        self.waivers = waivers
        self.rerunner = rerunner
        self.windows = SentinelWindows(azl)

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
