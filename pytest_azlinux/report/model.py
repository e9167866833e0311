"""What one test did, in the shape every report writer and reader shares.

The names below are the contract between the plugin's features and the report tools:
whoever produces a property uses the constant, the tools read it by the same name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

# "waived" is written to JUnit as <skipped type="azl.waived">: standard readers see a skip.
Outcome = Literal["passed", "failed", "error", "skipped", "waived"]
Better = Literal["higher", "lower"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "waived", "skipped")
FAILING = frozenset({"failed", "error"})
# Which phase's outcome wins when a test reports several (an error in teardown keeps a FAIL's
# text); also which shard's outcome a merge keeps.
RANK: dict[str, int] = {"passed": 0, "skipped": 1, "waived": 2, "failed": 3, "error": 4}

# Names of user properties the plugin puts on test reports.
PROP_HOST = "azl.host"
PROP_TARGET = "azl.target"
PROP_IMAGE = "azl.image"
PROP_FACTS = "azl.facts"
# On every test of an AKS node: what the node's labels say of its image (facts.py, LABEL_*).
PROP_NODE_IMAGE = "azl.node_image_version"
PROP_OS_SKU = "azl.os_sku"
PROP_OS_SKU_EFFECTIVE = "azl.os_sku_effective"
PROP_OS_SKU_REQUESTED = "azl.os_sku_requested"
# One host's facts and package list (JSON, ``image_file.host_entry`` plus "image" and "host"),
# on the first test of each host in a process; the collector writes ``<image>.image.json``.
PROP_IMAGE_RECORD = "azl.image_record"
# "error": an infrastructure error raised in the call phase; "waived": a failure accepted by
# a waiver (the azl.waiver.* properties say which).
PROP_OUTCOME = "azl.outcome"
METRIC_PREFIX = "metric."
# PROP_OUTCOME values: "error" marks a call-phase infrastructure error (ERROR, not FAIL);
# OUTCOME_FINDING marks a failure outside the call phase that is a finding (FAIL, not ERROR):
# a sentinel's teardown failure.
OUTCOME_FINDING = "failed"

# The gate (pytest_azlinux/gate/): waivers, reruns, sentinels. Report readers count by these.
OUTCOME_RERUN = "rerun"  # TestReport.outcome of an attempt that is run again (not reported)
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
# Whole-target checks ``azl report merge`` judges again over all shards (report/rejudge.py):
# the check's name, the target it judged, and per host what it judged (azl.evidence.<host>).
PROP_REJUDGE = "azl.rejudge"
PROP_REJUDGE_TARGET = "azl.rejudge.target"
EVIDENCE_PREFIX = "azl.evidence."
# On a merged case that was judged again: what each shard had said.
PROP_MERGE_REJUDGED = "azl.merge.rejudged"
WAIVED_FAILURE_SECTION = "azl waived failure"  # report section: the failure a waiver covered
# Sentinel findings of a test that had already failed: evidence on its teardown report (a
# section, as ``item.add_report_section("teardown", "azl sentinels", ...)`` names it), not a
# second FAIL of the same test.
SENTINELS_SECTION = "Captured azl sentinels teardown"
# Lines a check adds to its test's report output (what an allowlist accepted, records that
# may be missing): a captured-stdout section (``item.add_report_section(when, key, ...)``),
# so ``-rP`` and pytest's junit system-out show it; the per-image JUnit writes the lines as
# the case's ``<system-out>`` (report/output.py adds them).
REPORT_OUTPUT_KEY = "stdout azl"
REPORT_OUTPUT_SECTION = f"Captured {REPORT_OUTPUT_KEY} "  # + the phase


def is_waived(skipped: bool, user_properties: Iterable[tuple[str, object]]) -> bool:
    """A test report of a failure a waiver covers: skipped, with azl.waiver.state=waived."""
    return skipped and (PROP_WAIVER_STATE, "waived") in list(user_properties)

# Waivers: a test whose failure a waiver accepts. A skipped report carrying
# PROP_WAIVER_REASON (or PROP_OUTCOME=waived) is written as <skipped type="azl.waived">.
WAIVED_TYPE = "azl.waived"
PROP_WAIVER_REASON = "azl.waiver.reason"
PROP_WAIVER_EXPIRES = "azl.waiver.expires"
PROP_WAIVER_TRACKER = "azl.waiver.tracker"
PROP_WAIVER_OWNER = "azl.waiver.owner"
# The failure the waiver accepted (its message), so reports can show what was waived.
PROP_WAIVER_FINDING = "azl.waiver.finding"
# Reruns: a test that passed on attempt N after infrastructure errors carries azl.flaky=N.
PROP_FLAKY = "azl.flaky"
# Hardening controls: one test case per control and host.
PROP_CONTROL_ID = "azl.control.id"
PROP_CONTROL_SEVERITY = "azl.control.severity"  # low | medium | high
PROP_CONTROL_LEVEL = "azl.control.level"
PROP_CONTROL_REFERENCES = "azl.control.references"
SEVERITIES = ("high", "medium", "low")
# A failure's message keeps every line (the findings follow their headline), bounded.
MESSAGE_LIMIT = 2000


def bounded_message(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# Metric attributes beside ``metric.<name>`` (``metric.<name>.<attr>`` in JUnit,
# ``metric.<name>:<attr>`` in a test report's user properties).
METRIC_ATTRS = ("unit", "better", "low", "high", "gate", "threshold", "tolerance", "values")
# Units of time: a metric in one of them is a duration, compared for information only unless
# its suite declares it a gate (``gate=True``): run times move with the machine's load.
DURATION_UNITS = frozenset({"s", "ms", "us", "µs", "ns", "min", "h"})
NO_THRESHOLD = "none"


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured value with its unit, which direction is better, and its spread.

    ``low``/``high``: the range over the repetitions behind ``value`` (the measured noise);
    ``samples``: the repetitions themselves (``value`` is their median), which
    ``azl report compare`` tests for a significant change. Empty in reports written before
    repetitions were kept, and for values measured once.
    ``gate``: whether ``azl report compare`` may call a change a regression; None = by kind
    (durations no, everything else yes). ``threshold``: what the test judged the value
    against, as text; ``"none"`` says it was measured without one.
    """

    name: str
    value: float
    unit: str = ""
    better: Better = "higher"
    low: float | None = None
    high: float | None = None
    gate: bool | None = None
    threshold: str | None = None
    # The relative change the suite declares as noise for this metric on this target (the
    # lab's CPU-bound links); compare uses it where it is wider than its own tolerance.
    tolerance: float | None = None
    samples: tuple[float, ...] = ()

    @property
    def gated(self) -> bool:
        if self.gate is not None:
            return self.gate
        return self.unit not in DURATION_UNITS

    @property
    def spread(self) -> float:
        """Width of the measured range (0 when the value was measured once)."""
        if self.low is None or self.high is None:
            return 0.0
        return abs(self.high - self.low)


def format_samples(values: Iterable[float]) -> str:
    """Repetitions as the report keeps them: ``9.41,8.87,9.6`` (6 significant digits)."""
    return ",".join(f"{v:.6g}" for v in values)


def parse_samples(text: str | None) -> tuple[float, ...]:
    """The repetitions of a ``metric.<name>.values`` property; unreadable entries are dropped
    (a report edited by hand must not stop a compare), NaN and infinities too."""
    if not text:
        return ()
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            continue
        if value == value and abs(value) != float("inf"):
            out.append(value)
    return tuple(out)


@dataclass(slots=True)
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
    output: str = ""  # the lines checks added to the test's report (<system-out>)

    @property
    def flaky_attempts(self) -> int:
        """Attempts a passed-on-rerun test needed (0: not flaky)."""
        try:
            return int(self.properties.get(PROP_FLAKY, "0"))
        except ValueError:
            return 0

    @property
    def control(self) -> str | None:
        return self.properties.get(PROP_CONTROL_ID)

    @property
    def waived_finding(self) -> str:
        """What failed under a waiver: the recorded finding, else the skip's text."""
        return self.properties.get(PROP_WAIVER_FINDING) or self.details

    def waiver_text(self) -> str:
        """Why the test is waived, until when, and where it is tracked."""
        props = self.properties
        reason = props.get(PROP_WAIVER_REASON, "")
        if not reason:
            return self.message
        parts = [reason]
        if props.get(PROP_WAIVER_EXPIRES):
            parts.insert(0, f"until {props[PROP_WAIVER_EXPIRES]}:")
        if props.get(PROP_WAIVER_TRACKER):
            parts.append(f"({props[PROP_WAIVER_TRACKER]})")
        if props.get(PROP_WAIVER_OWNER):
            parts.append(f"[owner {props[PROP_WAIVER_OWNER]}]")
        return " ".join(parts)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``suites/n/test_x.py::TestA::test_b[h]`` -> (``suites.n.test_x.TestA``, ``test_b[h]``)."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    parts = rest.split("::") if rest else [""]
    return ".".join([module, *parts[:-1]]), parts[-1]


_MODULE_PATH = re.compile(r"^(?:[a-z_][a-z0-9_]*\.)+(?=[A-Z]\w*: )")
_COUNT_HEADER = re.compile(r"^(?P<head>.*?):? \d+ findings?$")


def finding_text(message: str, limit: int = 300) -> str:
    """A failure message on one line, with the findings themselves rather than their count.

    ``profile p (why): 1 finding`` followed by finding lines becomes ``profile p: <finding>;
    <finding>``; ``source:`` lines are left to the full text.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    lines[0] = lines[0].removeprefix("Failed: ")  # pytest's word for pytest.fail()
    lines[0] = _MODULE_PATH.sub("", lines[0])  # pytest_azlinux.errors.X: ... -> X: ...
    header = _COUNT_HEADER.match(lines[0])
    if header and len(lines) > 1:
        head = re.sub(r" \(.*\)$", "", header.group("head"))
        body = [line for line in lines[1:] if not line.startswith("source:")]
        text = f"{head}: " + "; ".join(body)
    else:
        text = " ".join(lines[:3]) if lines[0].endswith(":") else lines[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
