"""Write and read per-image JUnit XML, properties included, in time linear in the cases.

Metrics are testcase properties ``metric.<name>`` = value, with ``metric.<name>.unit``,
``.better``, ``.low``/``.high`` (the measured range), ``.values`` (the repetitions, comma
separated), ``.gate`` and ``.threshold`` beside them; a waived test is
``<skipped type="azl.waived">``. Standard JUnit readers accept the file unchanged.

Written and read with the standard library's ElementTree, one test case at a time: the
counts are summed first, then each case is serialized and written (junitparser recomputed
a suite's statistics on every added case, quadratic in the cases); reading streams the
file and drops each case from the tree once it is read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    format_samples,
    parse_samples,
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


def write_report(path: Path, name: str, cases: Sequence[CaseRecord],
                 properties: Mapping[str, str], *, timestamp: str | None = None,
                 hostname: str | None = None) -> None:
    """Write one per-image report of ``cases``, one case at a time."""
    counts = SuiteCounts()
    for record in cases:
        counts.add(_record_counts(record))
    _write(path, name, properties, counts, (serialize_case(to_testcase(r)) for r in cases),
           timestamp, hostname)


def serialize_case(case: ET.Element) -> str:
    """A ``<testcase>`` as indented text, ready to be written inside a suite."""
    ET.indent(case, level=2)
    case.tail = None
    return ET.tostring(case, encoding="unicode")


@dataclass(frozen=True, slots=True)
class SerializedCase:
    """A test case kept as its text (far smaller than its element tree) and its counts."""

    text: str
    counts: SuiteCounts


def write_serialized(path: Path, name: str, cases: Sequence[SerializedCase],
                     properties: Mapping[str, str], *, timestamp: str | None = None,
                     hostname: str | None = None) -> None:
    """Write one per-image report of test cases read from other reports (a merge)."""
    counts = SuiteCounts()
    for case in cases:
        counts.add(case.counts)
    _write(path, name, properties, counts, (c.text for c in cases), timestamp, hostname)


_CASES_MARK = "azl-cases-go-here"


def _write(path: Path, name: str, properties: Mapping[str, str], counts: SuiteCounts,
           cases: Iterable[str], timestamp: str | None, hostname: str | None) -> None:
    """``<testsuites>`` with one ``<testsuite>``: the head is built as a tree, the cases are
    serialized and written one by one, so memory and time per case stay flat."""
    root = ET.Element("testsuites", counts.attrs())
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts.attrs()})
    if timestamp:
        suite.set("timestamp", timestamp)
    if hostname:
        suite.set("hostname", hostname)
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": key, "value": value})
    suite.append(ET.Comment(_CASES_MARK))
    ET.indent(root)
    head, tail = ET.tostring(root, encoding="unicode").split(f"<!--{_CASES_MARK}-->")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("<?xml version='1.0' encoding='utf-8'?>\n")
        fh.write(head)
        separator = ""
        for text in cases:
            fh.write(separator)
            fh.write(text)
            separator = "\n    "
        fh.write(tail)
    tmp.replace(path)  # readers (and a crashed run) never see half a report


def _record_counts(record: CaseRecord) -> SuiteCounts:
    tag = _RESULT_TAG.get(record.outcome)
    return SuiteCounts(tests=1, failures=int(tag == "failure"), errors=int(tag == "error"),
                       skipped=int(tag == "skipped"), time=round(record.time, 3))


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
    if record.output:
        ET.SubElement(case, "system-out").text = record.output
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
    if metric.tolerance is not None:
        out.append((f"{key}.tolerance", f"{metric.tolerance:g}"))
    if metric.samples:
        out.append((f"{key}.values", format_samples(metric.samples)))
    return out


def suite_properties(suite: ET.Element) -> dict[str, str]:
    props = suite.find("properties")
    if props is None:
        return {}
    return {p.get("name", ""): p.get("value", "") for p in props if p.tag == "property"}


def stream_report(path: Path) -> Iterator[tuple[str, str, ET.Element]]:
    """Walk a report once: ``("case", suite name, <testcase>)`` for each test case, detached
    from the tree as soon as it is complete, then ``("suite", name, <testsuite>)`` at the end
    of each suite (its attributes and properties; the cases are gone by then).

    Memory stays flat and the time per case does not grow with the file.
    """
    stack: list[ET.Element] = []
    for event, elem in ET.iterparse(path, events=("start", "end")):
        if event == "start":
            if not stack and elem.tag not in ("testsuites", "testsuite"):
                raise ReportError(f"{path}: not a JUnit report (the root element is neither "
                                  "<testsuites> nor <testsuite>)")
            stack.append(elem)
            continue
        stack.pop()
        if elem.tag == "testsuite":
            yield "suite", elem.get("name", ""), elem
        elif elem.tag == "testcase" and stack and stack[-1].tag == "testsuite":
            parent = stack[-1]
            parent.remove(elem)  # the last child: found at once
            yield "case", parent.get("name", ""), elem


def read_cases(path: Path) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """Read a report back: suite properties per suite name, and its test cases."""
    return records_of(stream_report(path))


def records_of(stream: Iterable[tuple[str, str, ET.Element]]
               ) -> tuple[dict[str, dict[str, str]], list[CaseRecord]]:
    """Suite properties per suite name and the case records of a :func:`stream_report`."""
    suite_props: dict[str, dict[str, str]] = {}
    cases: list[CaseRecord] = []
    for kind, suite, elem in stream:
        if kind == "case":
            cases.append(from_testcase(elem, suite))
        else:
            suite_props[suite] = suite_properties(elem)
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
    output = case.find("system-out")
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
        output=output.text or "" if output is not None else "",
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
            tolerance=_optional_float(props.get(f"{key}.tolerance")),
            samples=parse_samples(props.get(f"{key}.values")),
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
