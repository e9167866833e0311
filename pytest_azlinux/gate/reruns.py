"""Reruns for infrastructure errors only (``--azl-reruns N``).

A test whose setup or call ends in an infrastructure error that may pass (host unreachable,
connection lost; a command timeout where the target's ``suites.reruns.timeouts`` allows it)
is run again, up to N times, after a short backoff and a fresh connection to its hosts. A
finding (FAIL) is never rerun, nor is an unknown or changed host key, nor a host the run
already gave up on (still unreachable after an earlier test's last rerun: later tests reuse
that error at once, so a dead host costs N reruns once, not N per test).

It is pytest's own protocol, run again (as pytest-rerunfailures does): each attempt's setup,
call and teardown go through the usual hooks; an attempt that will be rerun is logged with
the outcome ``rerun`` (the terminal shows ``R``, report writers skip it), the last attempt
as usual. A test that passes on a rerun carries ``azl.flaky=<attempts>``.
Between attempts only the test's own fixtures are torn down: module and session fixtures
stay, failed ones are set up again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from ..errors import CommandTimeout, ConnectionLost, HostKeyError, HostUnreachable, InfraError
from ..report.model import OUTCOME_RERUN, PROP_FLAKY
from ..runstate import ATTEMPT_KEY, item_host, item_target
from ..session import AzlSession, HostParam
from .settings import RerunSettings

RERUN = OUTCOME_RERUN  # the outcome of an attempt that is run again (pytest-rerunfailures')
BACKOFF_SECONDS = 1.0  # before the first rerun; doubled for each further one
MAX_BACKOFF_SECONDS = 10.0


@dataclass
class Attempt:
    """One run of a test through the protocol."""

    number: int
    dead_before: dict[str, InfraError | None]  # hosts' remembered errors when it started
    rerun: bool = False  # its error asks for another attempt
    error: str = ""  # that error, one line


@dataclass
class RerunState:
    """Everything a test's attempts leave behind for the next one."""

    attempt: Attempt
    errors: list[str] = field(default_factory=list)  # one line per attempt that was rerun


ATTEMPT = ATTEMPT_KEY


def item_params(item: pytest.Item, azl: AzlSession) -> list[HostParam]:
    """Every host a test uses: its host, a pair's second host, a target's hosts."""
    out: dict[str, HostParam] = {}
    first = item_host(item)
    if first is not None:
        out[first.id] = first
    callspec = getattr(item, "callspec", None)
    pair = callspec.params.get("azl_host_pair") if callspec is not None else None
    if isinstance(pair, tuple):
        for param in pair:
            if isinstance(param, HostParam):
                out.setdefault(param.id, param)
    if "azl_hosts" in getattr(item, "fixturenames", ()):
        target = item_target(item)
        for param in azl.params_of(target) if target is not None else ():
            out.setdefault(param.id, param)
    return list(out.values())


def rerunnable(error: BaseException, item: pytest.Item) -> bool:
    """Whether an error is infrastructure that may go away on its own."""
    if isinstance(error, HostKeyError):
        return False  # an unknown or changed host key does not fix itself
    if isinstance(error, HostUnreachable | ConnectionLost):
        return True
    if isinstance(error, CommandTimeout):
        target = item_target(item)
        return target is not None and target.settings_for(RerunSettings).timeouts
    return False


class Rerunner:
    """Runs a test's protocol again after a rerunnable infrastructure error."""

    def __init__(self, azl: AzlSession, reruns: int, backoff: float = BACKOFF_SECONDS) -> None:
        self.azl = azl
        self.reruns = reruns
        self.backoff = backoff
        # hosts still unreachable after a test's last rerun: later tests that reuse the
        # remembered error are not rerun (a dead host costs N reruns once, not per test)
        self.given_up: set[str] = set()

    def protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        initial = list(item.user_properties)
        state = RerunState(self._attempt(item, 1))
        item.stash[ATTEMPT] = state
        while True:
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            attempt = state.attempt
            if attempt.rerun:
                for report in reports:  # up to the failed phase; its teardown stays quiet
                    if report.failed:
                        report.outcome = RERUN  # type: ignore[assignment]
                        item.ihook.pytest_runtest_logreport(report=report)
                        break
                    item.ihook.pytest_runtest_logreport(report=report)
                item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
                state.errors.append(attempt.error)
                self._prepare(item, attempt.number)
                item.user_properties = list(initial)
                state.attempt = self._attempt(item, attempt.number + 1)
                continue
            if attempt.number > 1 and any(r.failed for r in reports):
                self.given_up.update(p.id for p in item_params(item, self.azl)
                                     if self.azl.dead(p.id) is not None)
            if attempt.number > 1 and all(r.passed for r in reports):
                for report in reports:
                    if report.when == "call":
                        report.user_properties.append((PROP_FLAKY, attempt.number))
            for report in reports:
                item.ihook.pytest_runtest_logreport(report=report)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            return True

    def _attempt(self, item: pytest.Item, number: int) -> Attempt:
        return Attempt(number, {p.id: self.azl.dead(p.id) for p in item_params(item, self.azl)})

    def judge(self, item: pytest.Item, call: pytest.CallInfo[None],
              report: pytest.TestReport) -> None:
        """After a setup or call report: does its error ask for another attempt?"""
        state = item.stash.get(ATTEMPT, None)
        if state is None or call.excinfo is None or not report.failed:
            return
        attempt = state.attempt
        error = call.excinfo.value
        if attempt.number > self.reruns or not rerunnable(error, item):
            return
        if any(_same(error, before) and host in self.given_up
               for host, before in attempt.dead_before.items()):
            return  # reused from a test whose reruns did not bring the host back
        attempt.rerun = True
        attempt.error = f"{call.excinfo.typename}: {str(error).splitlines()[0]}"[:300]

    def _prepare(self, item: pytest.Item, number: int) -> None:
        """Back off, reconnect the test's hosts, forget fixtures that failed."""
        time.sleep(min(self.backoff * 2 ** (number - 1), MAX_BACKOFF_SECONDS))
        for param in item_params(item, self.azl):
            self.azl.revive(param.id)
            with contextlib.suppress(InfraError):  # still down: the next attempt says so
                self.azl.host(param)
        _forget_failed_fixtures(item)


def _same(error: BaseException, remembered: InfraError | None) -> bool:
    """Whether ``error`` is a host's remembered error raised again (as a fresh copy)."""
    return (remembered is not None and type(error) is type(remembered)
            and error.args == remembered.args)


def pending_rerun(item: pytest.Item) -> bool:
    state = item.stash.get(ATTEMPT, None)
    return state is not None and state.attempt.rerun


def keep_higher_scopes(item: pytest.Item) -> Generator[None, None, None]:
    """Teardown wrapper body: before a rerun tear down only the test itself (its function
    fixtures), not the module, class and session fixtures the next attempt needs again."""
    stack: dict[Any, Any] = item.session._setupstate.stack
    kept = {node: entry for node, entry in stack.items() if node is not item}
    for node in kept:
        del stack[node]
    try:
        yield
    finally:
        rest = dict(stack)
        stack.clear()
        stack.update(kept)
        stack.update(rest)


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """A fixture (of any scope) that failed on the last attempt is set up again."""
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            cached = getattr(fixturedef, "cached_result", None)
            if cached is not None and cached[2] is not None:
                fixturedef.cached_result = None
                finalizers = getattr(fixturedef, "_finalizers", None)
                if isinstance(finalizers, list):
                    finalizers.clear()
