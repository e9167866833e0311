"""The gate's pytest hooks: waivers, sentinels and reruns (one plugin object per process).

``register(config, azl, targets)`` is called by the main plugin once a target is selected,
in the controller and in every xdist worker: tests run (and are judged) where they run; the
controller reads what happened off the reports (``summary.GateLedger``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .. import acceptance
from ..errors import InfraError, SentinelFindings, WaiversError
from ..report.model import (
    OUTCOME_FINDING,
    PROP_IMAGE,
    PROP_OUTCOME,
    PROP_SENTINELS_OFF,
    PROP_TARGET,
    PROP_WAIVER_EXPIRES,
    PROP_WAIVER_ID,
    PROP_WAIVER_OWNER,
    PROP_WAIVER_REASON,
    PROP_WAIVER_STATE,
    PROP_WAIVER_TRACKER,
    WAIVED_FAILURE_SECTION,
)
from ..runstate import item_host
from ..session import AzlSession, HostParam
from ..targets import TargetsFile
from .denials import denial_findings, watched_by_selinux_suite
from .options import reruns_option
from .reruns import RERUN, Rerunner, item_params, keep_higher_scopes, pending_rerun
from .sentinels import Finding, HostWatch, Observation, kernel_findings
from .settings import SENTINEL_NAMES, SentinelSettings
from .summary import GateLedger
from .waivers import Loaded, Subject, WaiverSet, find_waivers_file, load_waivers

PLUGIN_NAME = "azl-gate"
LEDGER_NAME = "azl-gate-ledger"
PROP_CONTROL = "azl.control.id"  # a hardening control's id, on its tests' reports
CONTROL_MARKER = "azl_control"  # both markers are declared with the plugin's (plugin.MARKERS)
NO_SENTINELS_MARKER = "azl_no_sentinels"
# Built-in waivers of a target kind: the lab's hosts are Debian under Azure Linux identity
# files, so some checks fail there by design.
KIND_WAIVERS = {"lab": ("pytest_azlinux.lab", "waivers.yaml")}

_WINDOW = pytest.StashKey["_Window"]()


@dataclass
class _Window:
    """One test's sentinel window: when it started, and the sentinels it opts out of."""

    started: float
    skip: frozenset[str]
    ran: bool = False  # setup got past skipping: there is something to check


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
        self.azl = azl
        self.waivers = waivers
        self.rerunner = rerunner
        self.watches: dict[str, HostWatch] = {}

    # -- reruns ----------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if self.rerunner.reruns <= 0:
            return None
        return self.rerunner.protocol(item, nextitem)

    # -- sentinels: the window ---------------------------------------------------------------
    # Not tryfirst: after pytest's skip markers (a skipped test touches no host), before the
    # runner sets up the test's fixtures (registered earlier, so called later).
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A test that opts out is still read at its end (not judged): the next test is not
        # blamed for what this one caused.
        item.stash[_WINDOW] = _Window(time.monotonic(), _opted_out(item))
        for param in item_params(item, self.azl):
            watch = self._watch(param)
            if watch is not None and not watch.probed:
                self._check(param, watch)

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
            self._end_window(item, raise_findings=False)
            raise
        self._end_window(item, raise_findings=True)
        return result

    def _watch(self, param: HostParam) -> HostWatch | None:
        settings = param.target.settings_for(SentinelSettings)
        if not settings.enabled:
            return None
        watch = self.watches.get(param.id)
        if watch is None:
            watch = self.watches[param.id] = HostWatch(param.id, param.spec.access == "local")
        return watch

    def _check(self, param: HostParam, watch: HostWatch) -> Observation | None:
        if self.azl.dead(param.id) is not None:
            return None
        settings = param.target.settings_for(SentinelSettings)
        try:
            return watch.check(self.azl.host(param), settings)
        except InfraError:
            return None  # the test reports the host's trouble; the next check catches up

    def _end_window(self, item: pytest.Item, *, raise_findings: bool) -> None:
        __tracebackhide__ = True
        window = item.stash.get(_WINDOW, None)
        if window is None or not window.ran:
            return
        blocks: list[tuple[str, list[Finding]]] = []
        for param in item_params(item, self.azl):
            watch = self._watch(param)
            if watch is None or not watch.probed:
                continue
            observed = self._check(param, watch) if watch.active else None
            if watch.off and not watch.announced:  # once per host: why a sentinel is off
                item.user_properties.append((PROP_SENTINELS_OFF, json.dumps({param.id: watch.off})))
                watch.announced = True
            if observed is None:
                continue
            findings = self._judge(item, param, watch, observed, window)
            if findings:
                settings = param.target.settings_for(SentinelSettings)
                blocks.append((_describe(param, watch, findings, settings.max_lines), findings))
            watch.last_window = f"the end of {item.nodeid}"
        if not blocks:
            return
        names = sorted({f.sentinel for block in blocks for f in block[1]})
        hint = _HOW_TO_ACCEPT.format(target=item_target_name(item),
                                     names=", ".join(f'"{n}"' for n in names))
        message = "\n".join([*(text for text, _ in blocks), hint])
        if raise_findings:
            item.user_properties.append((PROP_OUTCOME, OUTCOME_FINDING))
            raise SentinelFindings(message)
        item.add_report_section("teardown", "azl sentinels", message)

    def _judge(self, item: pytest.Item, param: HostParam, watch: HostWatch,
               seen: Observation, window: _Window) -> list[Finding]:
        settings = param.target.settings_for(SentinelSettings)
        today = acceptance.today()
        entries = [e for e in settings.allowlist if e.active(today)]

        def allowlisted(sentinel: str, line: str) -> bool:
            return any(e.matches(sentinel, param.id, line) for e in entries)

        out: list[Finding] = []
        if "kernel" not in watch.off and "kernel" not in window.skip:
            since = None
            if seen.uptime is not None:
                since = (seen.uptime - (time.monotonic() - window.started)) * 1e6
            records = [r for r in seen.kernel if not allowlisted("kernel", r.text)]
            out += kernel_findings(records, since)
        if "units" not in watch.off and "units" not in window.skip:
            units = [u for u in seen.new_units if not allowlisted("units", u)]
            if units:
                out.append(Finding("units", f"{len(units)} unit(s) failed", tuple(units)))
        if ("denials" not in watch.off and "denials" not in window.skip and seen.denial_lines
                and not watched_by_selinux_suite(item, param.target)):
            out += denial_findings(seen.denial_lines, param.target,
                                   lambda line: allowlisted("denials", line))
        return out

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            _opted_out(item)  # a misspelt sentinel name is a usage error before anything runs

    # -- reports: waivers, reruns, findings ------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        window = item.stash.get(_WINDOW, None)
        if call.when == "setup" and window is not None:
            window.ran = not report.skipped
        if call.when in ("setup", "call"):
            self.rerunner.judge(item, call, report)
            if not pending_rerun(item):
                self._apply_waivers(item, call, report)
        return report

    def _apply_waivers(self, item: pytest.Item, call: pytest.CallInfo[None],
                       report: pytest.TestReport) -> None:
        if not self.waivers or (call.when == "setup" and report.passed):
            return
        control = _control(item)
        if control is not None and not any(k == PROP_CONTROL for k, _ in item.user_properties):
            report.user_properties.append((PROP_CONTROL, control))
        props = dict(report.user_properties)
        host = item_host(item)
        subject = Subject(
            item.nodeid, control=control, target=_str(props.get(PROP_TARGET)) or
            (host.target.name if host else None), image=_str(props.get(PROP_IMAGE)),
            host=host.id if host else None,
        )
        found = self.waivers.lookup(subject, acceptance.today())
        infra = call.excinfo is not None and call.excinfo.errisinstance(InfraError)
        if found.active is not None:
            # ERRORs (infrastructure, or a failure in setup) are never waived
            error = report.failed and (infra or call.when == "setup")
            state = ("error" if error else "waived" if report.failed
                     else "unneeded" if report.passed else "skipped")
            _mark(report, found.active, state)
            if state == "waived":
                _waive(item, report, found.active)
        elif found.expired is not None:
            _mark(report, found.expired, "expired")

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        if report.outcome == RERUN:
            return RERUN, "R", ("RERUN", {"yellow": True})
        props = report.user_properties
        if report.when == "call" and report.skipped and (PROP_WAIVER_STATE, "waived") in props:
            return "waived", "w", ("WAIVED", {"yellow": True})
        if report.when == "teardown" and report.failed and (
            PROP_OUTCOME, OUTCOME_FINDING) in props:
            return "failed", "F", ("FAILED", {"red": True})
        return None


def _mark(report: pytest.TestReport, loaded: Loaded, state: str) -> None:
    waiver = loaded.waiver
    props = [(PROP_WAIVER_ID, loaded.source), (PROP_WAIVER_STATE, state),
             (PROP_WAIVER_REASON, waiver.reason)]
    if waiver.expires is not None:
        props.append((PROP_WAIVER_EXPIRES, waiver.expires.isoformat()))
    if waiver.tracker:
        props.append((PROP_WAIVER_TRACKER, waiver.tracker))
    if waiver.owner:
        props.append((PROP_WAIVER_OWNER, waiver.owner))
    report.user_properties.extend(props)


def _waive(item: pytest.Item, report: pytest.TestReport, loaded: Loaded) -> None:
    """A failure the waiver covers: reported as skipped (exit 0), its text kept aside."""
    report.sections.append((WAIVED_FAILURE_SECTION, str(report.longrepr)))
    path, lineno, _ = item.reportinfo()
    report.outcome = "skipped"
    report.longrepr = (str(path), (lineno or 0) + 1, loaded.waiver.message())


def _control(item: pytest.Item) -> str | None:
    for key, value in item.user_properties:
        if key == PROP_CONTROL:
            return str(value)
    mark = item.get_closest_marker(CONTROL_MARKER)
    if mark is None:
        return None
    value = mark.args[0] if mark.args else mark.kwargs.get("id")
    return str(value) if value is not None else None


def _opted_out(item: pytest.Item) -> frozenset[str]:
    mark = item.get_closest_marker(NO_SENTINELS_MARKER)
    if mark is None:
        return frozenset()
    names = frozenset(str(a) for a in mark.args) or frozenset(SENTINEL_NAMES)
    unknown = names - set(SENTINEL_NAMES)
    if unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: {NO_SENTINELS_MARKER}({', '.join(sorted(unknown))}): unknown "
            f"sentinel; the sentinels are {', '.join(SENTINEL_NAMES)}"
        )
    return names


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def item_target_name(item: pytest.Item) -> str:
    host = item_host(item)
    return host.target.name if host is not None else "<target>"


def _describe(param: HostParam, watch: HostWatch, findings: list[Finding], max_lines: int) -> str:
    head = f"sentinels: new on {param.id} during this test (since {watch.last_window}):"
    return "\n".join([head, *(f.describe(max_lines) for f in findings)])


_HOW_TO_ACCEPT = (
    "to accept a known line: targets.{target}.suites.sentinels.allowlist (pattern, reason, "
    "expires); a test that causes it on purpose: @pytest.mark.azl_no_sentinels({names})"
)
