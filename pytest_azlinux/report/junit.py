"""Write and read per-image JUnit XML (junitparser), properties included.

Metrics are testcase properties ``metric.<name>`` = value, with ``metric.<name>.unit`` and
``metric.<name>.better`` beside them, so standard JUnit readers still accept the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from junitparser import (
    Error,
    Failure,
    JUnitXml,
    Properties,
    Property,
    Skipped,
    TestCase,
    TestSuite,
)

from .model import METRIC_PREFIX, CaseRecord, Metric


def build_suite(
    name: str, cases: Iterable[CaseRecord], properties: Mapping[str, str], *,
    timestamp: str, hostname: str,
) -> TestSuite:
    suite = TestSuite(name)
    suite.timestamp = timestamp
    suite.hostname = hostname
    for key, value in properties.items():
        suite.add_property(key, value)
    total = 0.0
    for record in cases:
        suite.add_testcase(to_testcase(record))
        total += record.time
    suite.time = round(total, 3)
    suite.update_statistics()
    return suite


def to_testcase(record: CaseRecord) -> TestCase:
    case = TestCase(record.name, record.classname, round(record.time, 3))
    props = Properties()
    for key, value in record.properties.items():
        props.append(Property(key, value))
    for metric in record.metrics:
        props.append(Property(f"{METRIC_PREFIX}{metric.name}", f"{metric.value:g}"))
        if metric.unit:
            props.append(Property(f"{METRIC_PREFIX}{metric.name}.unit", metric.unit))
        props.append(Property(f"{METRIC_PREFIX}{metric.name}.better", metric.better))
    if len(list(props)):
        case.append(props)
    if record.outcome == "failed":
        result: Failure | Error | Skipped = Failure(record.message)
    elif record.outcome == "error":
        result = Error(record.message)
    elif record.outcome == "skipped":
        result = Skipped(record.message, record.skip_type or None)  # type="azl.waived"
    else:
        return case
    if record.details:
        result.text = record.details
    case.result = [result]
    return case


def write_report(path: Path, suite: TestSuite) -> None:
    xml = JUnitXml()
    xml.add_testsuite(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)


def read_cases(path: Path) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """Read a report back: suite properties per suite name, and its test cases."""
    xml = JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    suite_props: dict[str, dict[str, str]] = {}
    cases: list[CaseRecord] = []
    for suite in suites:
        suite_props[suite.name] = {p.name: p.value for p in suite.properties()}
        for case in suite:
            cases.append(from_testcase(case, suite.name))
    return suite_props, cases


def from_testcase(case: TestCase, image: str | None) -> CaseRecord:
    props: dict[str, str] = {}
    for child in case.iterchildren(Properties):
        for prop in child.iterchildren(Property):
            props[prop.name] = prop.value
    metrics: list[Metric] = []
    for key, value in props.items():
        if key.startswith(METRIC_PREFIX) and not key.endswith((".unit", ".better")):
            name = key[len(METRIC_PREFIX):]
            better = props.get(f"{key}.better", "higher")
            metrics.append(
                Metric(name, float(value), props.get(f"{key}.unit", ""),
                       "lower" if better == "lower" else "higher")
            )
    plain = {k: v for k, v in props.items() if not k.startswith(METRIC_PREFIX)}
    outcome = "passed"
    message = details = ""
    for result in case.result:
        outcome = {"Failure": "failed", "Error": "error", "Skipped": "skipped"}.get(
            type(result).__name__, outcome
        )
        message = result.message or ""
        details = result.text or ""
    return CaseRecord(
        nodeid=f"{case.classname}::{case.name}",
        classname=case.classname or "",
        name=case.name or "",
        outcome=outcome,  # type: ignore[arg-type]
        message=message,
        details=details,
        time=float(case.time or 0),
        host=plain.get("azl.host"),
        target=plain.get("azl.target"),
        image=image,
        metrics=metrics,
        properties=plain,
    )
