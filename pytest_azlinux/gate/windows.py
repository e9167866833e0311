"""Sentinel windows: each test's checks on its hosts, turned into findings.

A window opens in the setup of a test (the first test of a host probes it) and closes after
its teardown with one check per host. Findings the target does not accept fail the test at
teardown (``SentinelFindings``, a FAIL), unless the test failed already: then they are its
evidence (a section of its teardown report), not a second FAIL of the same test. What the
test opted out of is read but not judged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from .. import acceptance
from ..errors import ConnectionLost, HostUnreachable, InfraError, SentinelFindings
from ..report.model import OUTCOME_FINDING, PROP_OUTCOME, PROP_SENTINELS_OFF
from ..runstate import WINDOW_KEY, item_host
from ..session import AzlSession, HostParam
from .denials import denial_findings, watched_by_selinux_suite
from .reruns import item_params
from .sentinels import Finding, HostWatch, Observation, kernel_findings
from .settings import SENTINEL_NAMES, SentinelSettings

NO_SENTINELS_MARKER = "azl_no_sentinels"  # declared by the sentinels entry (builtin.py)
_HOW_TO_ACCEPT = (
    "to accept a known line: targets.{target}.suites.sentinels.allowlist (pattern, reason, "
    "expires); a test that causes it on purpose: @pytest.mark.azl_no_sentinels({names})"
)
_WINDOW = WINDOW_KEY


@dataclass
class _Window:
    """One test's sentinel window: when it started, and the sentinels it opts out of."""

    started: float
    skip: frozenset[str]
    ran: bool = False  # setup got past skipping: there is something to check
    failed: bool = False  # the test's call failed: findings are its evidence, not a 2nd FAIL


class SentinelWindows:
    """The sentinels of one pytest process: a watch per host, a window per test."""

    def __init__(self, azl: AzlSession) -> None:
        self.azl = azl
        self.watches: dict[str, HostWatch] = {}

    def open(self, item: pytest.Item) -> None:
        """Before the test's fixtures: probe hosts seen for the first time."""
        # A test that opts out is still read at its end (not judged): the next test is not
        # blamed for what this one caused.
        item.stash[_WINDOW] = _Window(time.monotonic(), opted_out(item))
        for param in item_params(item, self.azl):
            watch = self._watch(param)
            if watch is not None and not watch.probed:
                self._check(param, watch)

    def setup_reported(self, item: pytest.Item, report: pytest.TestReport) -> None:
        window = item.stash.get(_WINDOW, None)
        if window is not None:
            window.ran = not report.skipped

    def call_reported(self, item: pytest.Item, report: pytest.TestReport) -> None:
        window = item.stash.get(_WINDOW, None)
        if window is not None:
            window.failed = report.failed

    def close(self, item: pytest.Item, *, raise_findings: bool) -> None:
        """After the test's teardown: one check per host; findings fail the test (or, when
        its call or its teardown already failed, are added to its report: a test has one
        outcome, and a unit that fails with the test's command is seen by both)."""
        __tracebackhide__ = True  # a finding is its message, not the plugin's frames
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
        names = sorted({f.sentinel for _, found in blocks for f in found})
        hint = _HOW_TO_ACCEPT.format(target=_target_name(item),
                                     names=", ".join(f'"{n}"' for n in names))
        message = "\n".join([*(text for text, _ in blocks), hint])
        if raise_findings and not window.failed:
            item.user_properties.append((PROP_OUTCOME, OUTCOME_FINDING))
            raise SentinelFindings(message)
        item.add_report_section("teardown", "azl sentinels", message)  # SENTINELS_SECTION

    def _watch(self, param: HostParam) -> HostWatch | None:
        settings = param.target.settings_for(SentinelSettings)
        if not settings.enabled or param.spec.access == "recorded":
            return None  # a recording has no kernel log, units or denials to watch
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
        except (HostUnreachable, ConnectionLost) as exc:
            # The transport gave up on the host (a node whose exec fails, a reconnect that
            # failed): it is dead now, not at the next test's first command. Swallowed, the
            # tests after it passed on reads taken earlier, each waiting out a reconnect.
            self.azl.mark_dead(param.id, exc)
            return None
        except InfraError:
            return None  # a slow check (timeout): the test reports it; the next catches up

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


def opted_out(item: pytest.Item) -> frozenset[str]:
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


def _target_name(item: pytest.Item) -> str:
    host = item_host(item)
    return host.target.name if host is not None else "<target>"


def _describe(param: HostParam, watch: HostWatch, findings: list[Finding], max_lines: int) -> str:
    head = f"sentinels: new on {param.id} during this test (since {watch.last_window}):"
    return "\n".join([head, *(f.describe(max_lines) for f in findings)])
