"""pytest side of the hardening baseline: control parameters, item identity, the fixture.

- ``control_params()``: one ``pytest.param`` per control, id = control id, marked
  ``azl_control(id)``; with ``azl_host`` the test ids read ``test_control[AZL-SSH-001-host]``.
- At collection every item marked ``azl_control`` gets the control in ``item.stash[CONTROL_KEY]``
  and the JUnit properties ``azl.control.id``, ``.title``, ``.severity``, ``.level``,
  ``.references`` (on every report, skipped and errored ones too). ``control_id(item)`` is
  what waivers and reports match on.
- ``azl_hardening``: the ``HostBaseline`` of the test's host (one per host per run).
- ``check_control(baseline, control)``: skip (level, not applicable), ERROR (could not read)
  or FAIL with what was found, what was expected and the remediation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from ..errors import ControlsError, ProbeUnavailable, SettingsError
from ..host import Host
from ..packages import inventory
from ..profiles.fixtures import host_profile
from ..reads import Read
from ..runstate import BASELINES_KEY, COLLECTED_KEY, SESSION_KEY, item_host
from ..runstate import CONTROL_KEY as CONTROL_KEY
from ..session import SelectedTarget
from .baseline import HostBaseline, LevelChoice, plan_for, unknown_profile_ids
from .loader import load_controls
from .model import Control
from .settings import HardeningSettings

MARKER = "azl_control"
PROP_ID = "azl.control.id"
PROP_TITLE = "azl.control.title"
PROP_SEVERITY = "azl.control.severity"
PROP_LEVEL = "azl.control.level"
PROP_REFERENCES = "azl.control.references"


def _usage_error(exc: Exception) -> NoReturn:
    raise pytest.UsageError(str(exc)) from None


def control_params() -> list[Any]:
    """One parameter per shipped control: ``pytest.mark.parametrize("control", ...)``."""
    try:
        controls = load_controls()
    except ControlsError as exc:
        _usage_error(exc)
    return [pytest.param(c, id=c.id, marks=pytest.mark.azl_control(c.id)) for c in controls]


def control_id(item: pytest.Item) -> str | None:
    """The hardening control an item checks (``azl_control`` marker), or None."""
    mark = item.get_closest_marker(MARKER)
    return str(mark.args[0]) if mark is not None and mark.args else None


def control_properties(control: Control) -> list[tuple[str, object]]:
    return [
        (PROP_ID, control.id),
        (PROP_TITLE, control.title),
        (PROP_SEVERITY, control.severity),
        (PROP_LEVEL, str(control.level)),
        (PROP_REFERENCES, control.references_text()),
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [(item, control_id(item)) for item in items]
    marked = [(item, cid) for item, cid in marked if cid is not None]
    if not marked:
        return
    try:
        controls = load_controls()
    except ControlsError as exc:
        _usage_error(exc)
    for item, cid in marked:
        # a user's own test may name a control of their own: it is matched by its id
        # (waivers, reports) but carries no catalogue data
        if cid is not None and cid in controls:
            control = controls.get(cid)
            item.stash[CONTROL_KEY] = control
            item.user_properties.extend(control_properties(control))


@dataclass(frozen=True, eq=False)
class InventoryReads:
    """A ``ReadSource``: the package inventory's reads on the hosts with controls that judge
    by packages, fetched while the session prepares the hosts."""

    hosts: Collection[tuple[str, str]]  # (target, host name)

    def __call__(self, host: Host) -> tuple[Read, ...]:
        wanted = (host.spec.target, host.spec.name) in self.hosts
        return inventory.READS if wanted else ()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Index the collected controls by host once (a host's read covers what it will run);
    read ahead the package inventories of hosts with controls that judge by packages."""
    index: dict[str | None, dict[str, Control]] = {}
    hosts: set[tuple[str, str]] = set()
    for item in session.items:
        control = item.stash.get(CONTROL_KEY, None)
        if control is not None:
            param = item_host(item)
            index.setdefault(param.id if param else None, {})[control.id] = control
            if param is not None and plan_for([control]).packages:
                hosts.add((param.target.name, param.spec.name))
    session.config.stash[COLLECTED_KEY] = index
    azl = session.config.stash.get(SESSION_KEY, None)
    if azl is not None and hosts:
        azl.read_ahead(InventoryReads(frozenset(hosts)))



def _baseline(request: pytest.FixtureRequest, host: Host, target: SelectedTarget) -> HostBaseline:
    param = item_host(request.node)
    key = param.id if param is not None else host.name
    cache = request.config.stash.setdefault(BASELINES_KEY, {})
    found = cache.get(key)
    if found is not None:
        return found
    profile = host_profile(request.config, host, target)
    unknown = unknown_profile_ids(profile, (c.id for c in load_controls()))
    if unknown:
        pytest.fail(
            f"{profile.path}: field 'hardening_not_applicable': unknown control id {unknown[0]!r}",
            pytrace=False,
        )
    problem = None
    try:
        settings = target.settings_for(HardeningSettings)
    except SettingsError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback
    level = LevelChoice.choose(
        request.config.getoption("azl_hardening_level", None), settings, target.name
    )
    # what this host's collected controls need, minus those that will be skipped
    collected = request.config.stash.get(COLLECTED_KEY, {}).get(key, {})
    baseline = HostBaseline(host, profile, settings, level, [])
    baseline.to_run = [c for c in collected.values() if baseline.skip_reason(c) is None]
    cache[key] = baseline
    return baseline


@pytest.fixture
def azl_hardening(
    request: pytest.FixtureRequest, azl_host: Host, azl_target: SelectedTarget
) -> HostBaseline:
    """The hardening baseline of the current host: profile, level, evidence (read once)."""
    return _baseline(request, azl_host, azl_target)


def failure_message(control: Control, found: str, expected: str) -> str:
    head = f"{control.id}: found {found}; expected {expected}"
    return "\n".join([
        head,
        f"  control:     {control.title} [{control.severity}, level {control.level}]",
        f"  remediation: {control.remediation}",
        f"  references:  {control.references_text()}",
    ])  # fmt: skip


def check_control(baseline: HostBaseline, control: Control) -> None:
    """Run one control on the baseline's host the way a test reports it."""
    __tracebackhide__ = True
    reason = baseline.skip_reason(control)
    if reason is not None:
        pytest.skip(reason)
    verdict = control.check.judge(baseline.evidence)
    if verdict.outcome == "not_applicable":
        pytest.skip(f"not applicable: {verdict.found}")
    if verdict.outcome == "unavailable":
        raise ProbeUnavailable(f"{baseline.host.name}: {control.id}: cannot check: {verdict.found}")
    if verdict.outcome == "failed":
        pytest.fail(failure_message(control, verdict.found, verdict.expected), pytrace=False)
