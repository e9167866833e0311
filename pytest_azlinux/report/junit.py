"""Write and read per-image JUnit XML, properties included, in time linear in the cases.

Metrics are testcase properties ``metric.<name>`` = value, with ``metric.<name>.unit``,
``.better``, ``.low``/``.high`` (the measured range), ``.gate`` and ``.threshold`` beside
them; a waived test is ``<skipped type="azl.waived">``. Standard JUnit readers accept the
file unchanged.

Built and read with the standard library's ElementTree: the tree is made in one pass with
the counts summed on the way (junitparser recomputed a suite's statistics on every added
case, quadratic in the cases), and reading walks each element once.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReportError
from .model import (
    METRIC_ATTRS,
    METRIC_PREFIX,
    WAIVED_TYPE,
    CaseRecord,
    Metric,
    Outcome,
)

_RESULT_TAG = {"failed": "failure", "error": "error", "skipped": "skipped", "waived": "skipped"}
_TAG_OUTCOME: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}
_METRIC_SUFFIXES = tuple(f".{a}" for a in METRIC_ATTRS)


@dataclass
class SuiteCounts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0

    def add(self, other: SuiteCounts) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.time += other.time

    def attrs(self) -> dict[str, str]:
        return {"tests": str(self.tests), "errors": str(self.errors),
                "failures": str(self.failures), "skipped": str(self.skipped),
                "time": f"{self.time:.3f}"}


def build_suite(
    name: str, cases: Iterable[CaseRecord], properties: Mapping[str, str], *,
    timestamp: str, hostname: str,
) -> ET.Element:
    """A ``<testsuite>`` element with its properties and cases, counts summed on the way."""
    return assemble_suite(name, properties, (to_testcase(r) for r in cases),
                          timestamp=timestamp, hostname=hostname)


def assemble_suite(name: str, properties: Mapping[str, str], cases: Iterable[ET.Element], *,
                   timestamp: str | None, hostname: str | None) -> ET.Element:
    """A ``<testsuite>`` from ready ``<testcase>`` elements (written or read back)."""
    suite = ET.Element("testsuite", {"name": name})
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": key, "value": value})
    counts = SuiteCounts()
    for case in cases:
        suite.append(case)
        counts.add(case_counts(case))
    suite.attrib.update(counts.attrs())
    if timestamp:
        suite.set("timestamp", timestamp)
    if hostname:
        suite.set("hostname", hostname)
    return suite


def case_counts(case: ET.Element) -> SuiteCounts:
    counts = SuiteCounts(tests=1, time=_seconds(case.get("time")))
    for child in case:
        if child.tag == "failure":
            counts.failures = 1
        elif child.tag == "error":
            counts.errors = 1
        elif child.tag == "skipped":
            counts.skipped = 1
    return counts


def to_testcase(record: CaseRecord) -> ET.Element:
    case = ET.Element("testcase", {"classname": record.classname, "name": record.name,
                                   "time": f"{record.time:.3f}"})
    pairs = list(record.properties.items())
    for metric in record.metrics:
        pairs += metric_properties(metric)
    if pairs:
        props = ET.SubElement(case, "properties")
        for key, value in pairs:
            ET.SubElement(props, "property", {"name": key, "value": value})
    tag = _RESULT_TAG.get(record.outcome)
    if tag is not None:
        result = ET.SubElement(case, tag, {"message": record.message})
        if record.outcome == "waived":
            result.set("type", WAIVED_TYPE)
        if record.details:
            result.text = record.details
    return case


def metric_properties(metric: Metric) -> list[tuple[str, str]]:
    key = f"{METRIC_PREFIX}{metric.name}"
    out = [(key, f"{metric.value:g}")]
    if metric.unit:
        out.append((f"{key}.unit", metric.unit))
    out.append((f"{key}.better", metric.better))
    if metric.low is not None and metric.high is not None:
        out += [(f"{key}.low", f"{metric.low:g}"), (f"{key}.high", f"{metric.high:g}")]
    if metric.gate is not None:
        out.append((f"{key}.gate", "true" if metric.gate else "false"))
    if metric.threshold is not None:
        out.append((f"{key}.threshold", metric.threshold))
    return out


def write_suites(path: Path, suites: Iterable[ET.Element]) -> None:
    """Write ``<testsuites>`` holding ``suites``, indented, totals on the root."""
    root = ET.Element("testsuites")
    totals = SuiteCounts()
    for suite in suites:
        root.append(suite)
        totals.add(SuiteCounts(int(suite.get("tests", 0)), int(suite.get("failures", 0)),
                               int(suite.get("errors", 0)), int(suite.get("skipped", 0)),
                               _seconds(suite.get("time"))))
    root.attrib.update(totals.attrs())
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)  # readers (and a crashed run) never see half a report


def write_report(path: Path, suite: ET.Element) -> None:
    write_suites(path, [suite])


def parse_suites(path: Path) -> list[ET.Element]:
    """The ``<testsuite>`` elements of a file (root ``<testsuites>`` or ``<testsuite>``)."""
    root = ET.parse(path).getroot()
    if root.tag == "testsuite":
        return [root]
    if root.tag != "testsuites":
        raise ReportError(f"{path}: not a JUnit report (the root element is neither "
                          "<testsuites> nor <testsuite>)")
    return [s for s in root if s.tag == "testsuite"]


def suite_properties(suite: ET.Element) -> dict[str, str]:
    props = suite.find("properties")
    if props is None:
        return {}
    return {p.get("name", ""): p.get("value", "") for p in props if p.tag == "property"}


def read_cases(path: Path) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """Read a report back: suite properties per suite name, and its test cases."""
    return cases_of(parse_suites(path))


def cases_of(suites: Iterable[ET.Element]) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    suite_props: dict[str, dict[str, str]] = {}
    cases: list[CaseRecord] = []
    for suite in suites:
        name = suite.get("name", "")
        suite_props[name] = suite_properties(suite)
        cases.extend(from_testcase(c, name) for c in suite if c.tag == "testcase")
    return suite_props, cases


def case_properties(case: ET.Element) -> dict[str, str]:
    props: dict[str, str] = {}
    for child in case:
        if child.tag == "properties":
            for prop in child:
                if prop.tag == "property":
                    props[prop.get("name", "")] = prop.get("value", "")
    return props


def case_outcome(case: ET.Element) -> tuple[Outcome, str, str]:
    """(outcome, message, text) of a ``<testcase>``."""
    outcome: Outcome = "passed"
    message = details = ""
    for child in case:
        found = _TAG_OUTCOME.get(str(child.tag))
        if found is None:
            continue
        outcome = found
        if found == "skipped" and child.get("type") == WAIVED_TYPE:
            outcome = "waived"
        message = child.get("message") or ""
        details = child.text or ""
    return outcome, message, details


def from_testcase(case: ET.Element, image: str | None) -> CaseRecord:
    props = case_properties(case)
    metrics = _metrics(props)
    plain = {k: v for k, v in props.items() if not k.startswith(METRIC_PREFIX)}
    outcome, message, details = case_outcome(case)
    classname, name = case.get("classname") or "", case.get("name") or ""
    return CaseRecord(
        nodeid=f"{classname}::{name}",
        classname=classname,
        name=name,
        outcome=outcome,
        message=message,
        details=details,
        time=_seconds(case.get("time")),
        host=plain.get("azl.host"),
        target=plain.get("azl.target"),
        image=image,
        metrics=metrics,
        properties=plain,
    )


def _metrics(props: Mapping[str, str]) -> list[Metric]:
    metrics: list[Metric] = []
    for key, value in props.items():
        if not key.startswith(METRIC_PREFIX) or key.endswith(_METRIC_SUFFIXES):
            continue
        gate = props.get(f"{key}.gate")
        metrics.append(Metric(
            key[len(METRIC_PREFIX):], _float(value), props.get(f"{key}.unit", ""),
            "lower" if props.get(f"{key}.better") == "lower" else "higher",
            low=_optional_float(props.get(f"{key}.low")),
            high=_optional_float(props.get(f"{key}.high")),
            gate=None if gate is None else gate == "true",
            threshold=props.get(f"{key}.threshold"),
        ))
    return metrics


def _float(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return float("nan")


def _seconds(text: str | None) -> float:
    value = _float(text)
    return value if value == value else 0.0  # NaN: a bad time counts as none


def _optional_float(text: str | None) -> float | None:
    return None if text is None else _float(text)
