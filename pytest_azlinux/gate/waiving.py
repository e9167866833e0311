"""Waivers applied to test reports, where the test runs (also in an xdist worker).

A failure (call phase, a finding) that an active waiver covers becomes a skipped report with
the waiver's message (terminal WAIVED, JUnit ``<skipped type="azl.waived">``), its failure
text kept in a report section. Every report a waiver matched carries the waiver's fields and
what it did (``azl.waiver.state``), so the controller can summarise the run from reports.
"""

from __future__ import annotations

import pytest

from .. import acceptance
from ..errors import InfraError
from ..report.model import (
    PROP_IMAGE,
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
from .waivers import Loaded, Subject, WaiverSet

PROP_CONTROL = "azl.control.id"  # a hardening control's id, on its tests' reports
CONTROL_MARKER = "azl_control"  # declared by the hardening entry (builtin.py)


def apply_waivers(waivers: WaiverSet, item: pytest.Item, call: pytest.CallInfo[None],
                  report: pytest.TestReport) -> None:
    """Judge a setup or call report against the waivers."""
    if not waivers or (call.when == "setup" and report.passed):
        return
    control = _control(item)
    if control is not None and not any(k == PROP_CONTROL for k, _ in item.user_properties):
        report.user_properties.append((PROP_CONTROL, control))
    props = dict(report.user_properties)
    host = item_host(item)
    subject = Subject(
        item.nodeid, control=control,
        target=_str(props.get(PROP_TARGET)) or (host.target.name if host else None),
        image=_str(props.get(PROP_IMAGE)), host=host.id if host else None,
    )
    found = waivers.lookup(subject, acceptance.today())
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


def _str(value: object) -> str | None:
    return None if value is None else str(value)
