"""What one test did, in the shape every report writer and reader shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["passed", "failed", "error", "skipped"]
Better = Literal["higher", "lower"]

# Names of user properties the plugin puts on test reports.
PROP_HOST = "azl.host"
PROP_TARGET = "azl.target"
PROP_IMAGE = "azl.image"
PROP_FACTS = "azl.facts"
PROP_OUTCOME = "azl.outcome"
METRIC_PREFIX = "metric."
# PROP_OUTCOME values: "error" marks a call-phase infrastructure error (ERROR, not FAIL);
# OUTCOME_FINDING marks a failure outside the call phase that is a finding (FAIL, not ERROR):
# a sentinel's teardown failure.
OUTCOME_FINDING = "failed"

# The gate (pytest_azlinux/gate/): waivers, reruns, sentinels. Report readers count by these.
OUTCOME_RERUN = "rerun"  # TestReport.outcome of an attempt that is run again (not reported)
SKIP_TYPE_WAIVED = "azl.waived"  # <skipped type="azl.waived" message="waived until ...">
PROP_WAIVER_REASON = "azl.waiver.reason"
PROP_WAIVER_EXPIRES = "azl.waiver.expires"  # ISO date; absent for a permanent waiver
PROP_WAIVER_TRACKER = "azl.waiver.tracker"
PROP_WAIVER_OWNER = "azl.waiver.owner"
PROP_WAIVER_ID = "azl.waiver.id"  # where the waiver is written: "azl-waivers.yaml[3]"
# what the waiver did: "waived" (a failure reported as waived), "unneeded" (the test passed),
# "expired" (it no longer applies: the failure counts), "error" (ERRORs are never waived)
PROP_WAIVER_STATE = "azl.waiver.state"
PROP_FLAKY = "azl.flaky"  # attempts a test needed that passed on a rerun (2 = one rerun)
PROP_SENTINELS_OFF = "azl.sentinels.off"  # on a host's first test: sentinels off there, and why
WAIVED_FAILURE_SECTION = "azl waived failure"  # report section: the failure a waiver covered


def is_waived(skipped: bool, user_properties: Iterable[tuple[str, object]]) -> bool:
    """A test report of a failure a waiver covers: skipped, with azl.waiver.state=waived."""
    return skipped and (PROP_WAIVER_STATE, "waived") in list(user_properties)


@dataclass(frozen=True)
class Metric:
    """A measured value with its unit and which direction is better."""

    name: str
    value: float
    unit: str = ""
    better: Better = "higher"


@dataclass
class CaseRecord:
    """One test case of a report."""

    nodeid: str
    classname: str
    name: str
    outcome: Outcome = "passed"
    message: str = ""
    details: str = ""
    time: float = 0.0
    host: str | None = None
    target: str | None = None
    image: str | None = None
    metrics: list[Metric] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    skip_type: str = ""  # the type of <skipped>: SKIP_TYPE_WAIVED for a waived failure


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``suites/n/test_x.py::TestA::test_b[h]`` -> (``suites.n.test_x.TestA``, ``test_b[h]``)."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    parts = rest.split("::") if rest else [""]
    return ".".join([module, *parts[:-1]]), parts[-1]
