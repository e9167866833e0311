"""What the gate did in a run, gathered from test reports (on the controller, also with
xdist): waivers applied, expired, no longer needed or stale; flaky tests; sentinels that are
off on some hosts. Printed as terminal summary sections; the stale and expired waivers also
go into every per-image report's suite properties.

Only about this run: a waiver scoped to targets, images or hosts the run did not include is
for another run, never stale here; a target's own waivers (the lab's) are listed only where
they applied.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..report.model import (
    PROP_FLAKY,
    PROP_HOST,
    PROP_IMAGE,
    PROP_SENTINELS_OFF,
    PROP_WAIVER_ID,
    PROP_WAIVER_STATE,
    SENTINELS_SECTION,
)
from .reruns import RERUN
from .waivers import Loaded, WaiverSet, glob_match

RUN_PROP_STALE = "azl.waivers.stale"  # suite property: waivers that matched no test
RUN_PROP_EXPIRED = "azl.waivers.expired"  # suite property: expired waivers of the run
SHOWN_TESTS = 5  # test ids listed per waiver before "and N more"


@dataclass
class WaiverUse:
    """The tests one waiver matched, by what it did to them."""

    by_state: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, state: str, nodeid: str) -> None:
        if nodeid not in self.by_state[state]:
            self.by_state[state].append(nodeid)


@dataclass(eq=False)  # registered as a pytest plugin: must stay hashable
class GateLedger:
    """Reads the gate's properties off every test report and summarises the run."""

    waivers: WaiverSet
    targets: Sequence[str]
    today: Callable[[], dt.date]
    uses: dict[str, WaiverUse] = field(default_factory=lambda: defaultdict(WaiverUse))
    flaky: dict[str, int] = field(default_factory=dict)
    rerun_errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sentinels_off: dict[str, dict[str, str]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)  # the image keys this run's tests ran on
    hosts: set[str] = field(default_factory=set)
    # test -> sentinel findings after it had failed (its evidence, not a second FAIL)
    after_failure: dict[str, str] = field(default_factory=dict)

    # -- input ---------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == RERUN:
            self.rerun_errors[report.nodeid].append(_first_line(report))
            return
        props = dict(report.user_properties)
        for key, seen in ((PROP_IMAGE, self.images), (PROP_HOST, self.hosts)):
            if props.get(key) is not None:
                seen.add(str(props[key]))
        source, state = props.get(PROP_WAIVER_ID), props.get(PROP_WAIVER_STATE)
        if source is not None and state is not None:
            self.uses[str(source)].add(str(state), report.nodeid)
        if PROP_FLAKY in props:
            self.flaky[report.nodeid] = int(str(props[PROP_FLAKY]))
        if PROP_SENTINELS_OFF in props:
            for host, off in json.loads(str(props[PROP_SENTINELS_OFF])).items():
                self.sentinels_off.setdefault(host, {}).update(off)
        evidence = dict(report.sections).get(SENTINELS_SECTION)
        if evidence and report.passed:  # a failed teardown shows its sections itself
            self.after_failure[report.nodeid] = evidence

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Before the per-image reports are written: the run's stale and expired waivers."""
        collector = session.config.pluginmanager.get_plugin("azl-reports")
        extra = getattr(collector, "run_properties", None)
        if isinstance(extra, dict):
            extra.update(self.run_properties())

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.write(terminalreporter)

    # -- judgements ----------------------------------------------------------------------
    def in_scope(self, loaded: Loaded) -> bool:
        """A waiver for none of this run's targets, images or hosts is not stale, just for
        another run."""
        w = loaded.waiver
        return all(globs is None or any(glob_match(g, v) for g in globs for v in values)
                   for globs, values in ((w.targets, self.targets), (w.images, self.images),
                                         (w.hosts, self.hosts)))

    def expired(self) -> list[Loaded]:
        today = self.today()
        return [w for w in self.waivers.waivers if self.in_scope(w) and w.waiver.expired(today)
                and (not w.shipped or w.source in self.uses)]

    def stale(self) -> list[Loaded]:
        return [w for w in self.waivers.waivers
                if not w.shipped and self.in_scope(w) and w.source not in self.uses
                and not w.waiver.expired(self.today())]

    def unneeded(self) -> list[tuple[Loaded, list[str]]]:
        out = []
        for w in self.waivers.waivers:
            use = self.uses.get(w.source)
            if w.shipped:  # a target's known limit that did not show: nothing to act on
                continue
            if use is not None and use.by_state.get("unneeded") and not use.by_state.get("waived"):
                out.append((w, use.by_state["unneeded"]))
        return out

    def waived(self) -> list[tuple[Loaded, list[str]]]:
        return [(w, self.uses[w.source].by_state["waived"]) for w in self.waivers.waivers
                if w.source in self.uses and self.uses[w.source].by_state.get("waived")]

    def run_properties(self) -> dict[str, str]:
        """Suite properties for the per-image reports: the stale and expired waivers."""
        out = {}
        for name, found in ((RUN_PROP_STALE, self.stale()), (RUN_PROP_EXPIRED, self.expired())):
            if found:
                out[name] = json.dumps([_as_json(w) for w in found])
        return out

    # -- output --------------------------------------------------------------------------
    def write(self, terminal: Any) -> None:
        self._write_waivers(terminal)
        if self.flaky:
            terminal.section("azl flaky tests (passed on a rerun)")
            for nodeid, attempts in sorted(self.flaky.items()):
                errors = "; ".join(self.rerun_errors.get(nodeid, [])) or "an infrastructure error"
                terminal.line(f"{nodeid}: passed on attempt {attempts} after {errors}",
                              yellow=True)
        if self.sentinels_off or self.after_failure:
            terminal.section("azl sentinels")
        for nodeid, evidence in self.after_failure.items():
            terminal.line(f"{nodeid} (failed already; also seen on its hosts):", red=True)
            for line in evidence.splitlines():
                terminal.line(f"  {line}")
        if self.sentinels_off:
            grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
            for host, off in sorted(self.sentinels_off.items()):
                for sentinel, why in sorted(off.items()):
                    grouped[(sentinel, why)].append(host)
            for (sentinel, why), hosts in grouped.items():
                terminal.line(f"{sentinel} sentinel off on {', '.join(hosts)}: {why}")

    def _write_waivers(self, terminal: Any) -> None:
        expired, waived = self.expired(), self.waived()
        unneeded, stale = self.unneeded(), self.stale()
        if not (expired or waived or unneeded or stale):
            return
        terminal.section("azl waivers")
        if expired:
            terminal.line("EXPIRED, not applied (their failures count):", red=True)
            for w in expired:
                terminal.line(f"  {_label(w)}", red=True)
                terminal.line(f"      expired {_expires(w)}: {w.waiver.reason}{_tracker(w)}")
                _tests(terminal, self._uses(w, "expired"), "matching")
        if waived:
            count = sum(len(tests) for _, tests in waived)
            terminal.line(f"waived ({count} failing test(s)):", yellow=True)
            for w, tests in waived:
                terminal.line(f"  {_label(w)}", yellow=True)
                terminal.line(f"      {w.waiver.message()}")
                _tests(terminal, tests, "waived")
        if unneeded:
            terminal.line("waivers no longer needed (every test they match passed):")
            for w, tests in unneeded:
                terminal.line(f"  {_label(w)}: {w.waiver.reason}")
                _tests(terminal, tests, "passed")
        if stale:
            terminal.line("stale waivers (matched no test of this run):")
            for w in stale:
                terminal.line(f"  {_label(w)}: {w.waiver.reason}")

    def _uses(self, w: Loaded, state: str) -> list[str]:
        use = self.uses.get(w.source)
        return list(use.by_state.get(state, [])) if use is not None else []


def _label(w: Loaded) -> str:
    return f"{w.source} {w.waiver.describe_match()}"


def _expires(w: Loaded) -> str:
    return w.waiver.expires.isoformat() if w.waiver.expires else "-"


def _tracker(w: Loaded) -> str:
    return f" ({w.waiver.tracker})" if w.waiver.tracker else ""


def _tests(terminal: Any, nodeids: Sequence[str], what: str) -> None:
    for nodeid in nodeids[:SHOWN_TESTS]:
        terminal.line(f"      {what}: {nodeid}")
    if len(nodeids) > SHOWN_TESTS:
        terminal.line(f"      ... and {len(nodeids) - SHOWN_TESTS} more")


def _as_json(w: Loaded) -> dict[str, str]:
    out = {"waiver": w.source, "match": w.waiver.describe_match(), **w.waiver.acceptance_fields()}
    return out


def _first_line(report: pytest.TestReport) -> str:
    """The error of an attempt, as ``ConnectionLost: ...`` (without the module path)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", None) or report.longrepr or "").strip()
    line = (text.splitlines() or [report.outcome])[-1 if crash is None else 0]
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", line)[:300]
