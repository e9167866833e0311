"""pytest's own ``--junit-xml``, kept in agreement with the terminal and the per-image reports.

CI tools (azldev, GitHub test reporters, dashboards) read that file. pytest's junitxml plugin
decides ``<failure>`` or ``<error>`` by phase alone and writes only what reported, so without
these corrections an infrastructure error raised inside a test (a timeout, a lost connection,
a refused sudo) is a ``<failure>``, and an interrupted run leaves its unreached tests out (or
as nameless ``<testcase/>`` elements). Here:

- a failed call whose cause is an infrastructure error (``azl.outcome=error``, set by the
  plugin's makereport hook) is an ``<error>``; a sentinel finding failing the teardown
  (``azl.outcome=failed``) is a ``<failure>``, as the terminal's FAILED;
- at the end, every collected test the run left without an outcome (``ReportCollector.
  unfinished``: the per-image reports write the same ones) is an ``<error>`` saying why;
- sentinel findings after the test had failed (a section of its teardown report, not a
  second failure) are added to its failure's text;
- the lines checks add to a test's report (report/output.py: what an allowlist accepted,
  records that may be missing) are its ``<system-out>`` whatever ``junit_logging`` says
  (pytest writes captured output there only with ``system-out``, ``out-err`` or ``all``).

Both go through pytest's ``LogXML`` object (``_pytest.junitxml``: not a public API; the
members used are named in one place below, and tests/plugin/test_pytest_junit.py reads the
written file back).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Generator
from typing import Any

import pytest
from _pytest.junitxml import LogXML, xml_key

from .collector import ReportCollector, Unfinished, interruption
from .model import OUTCOME_FINDING, PROP_OUTCOME, SENTINELS_SECTION
from .output import report_output


class PytestJunit:
    """A pytest plugin (controller only) correcting what ``--junit-xml`` writes."""

    def __init__(self, config: pytest.Config, collector: ReportCollector) -> None:
        self.config = config
        self.collector = collector
        self.passed_calls: set[str] = set()  # tests whose call passed, teardown pending

    def _xml(self) -> LogXML | None:
        # Looked up when used: junitxml configures after this plugin registers.
        return self.config.stash.get(xml_key, None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        xml = self._xml()
        if xml is None:
            return (yield)
        evidence = dict(report.sections).get(SENTINELS_SECTION)
        if evidence and report.when == "teardown":
            _add_evidence(xml, report, evidence)  # before LogXML closes the test case
        if report.when == "teardown" and not _writes_stdout(xml, report):
            output = report_output(report, all_phases=True)
            if output:
                node = ET.Element("system-out")
                node.text = output
                xml.node_reporter(report).append(node)  # before LogXML closes the test case
        # LogXML closes the test case on teardown: hold on to its elements to see the new one
        finding = xml.node_reporter(report).nodes if is_teardown_finding(report) else []
        known = len(finding)
        result = yield
        if is_infra_call_error(report):
            _retag(xml, report, "failure", "error")
        for node in finding[known:]:
            _rename(xml, node, "error", "failure")
        if report.when == "call" and report.passed:
            self.passed_calls.add(report.nodeid)
        elif report.when == "teardown":
            self.passed_calls.discard(report.nodeid)
        return result

    @pytest.hookimpl(tryfirst=True)  # before LogXML writes the file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        xml = self._xml()
        if xml is None or session.config.option.collectonly:
            return
        for left in self.collector.unfinished(interruption(session, exitstatus)):
            if left.nodeid in self.passed_calls:
                xml.stats["passed"] -= 1  # its call passed, its teardown never ran: not a pass
            _write_error(xml, left)


def _writes_stdout(xml: LogXML, report: pytest.TestReport) -> bool:
    """pytest writes this test's captured stdout (ours included) as its system-out."""
    passing = xml.log_passing_tests or not report.passed
    return passing and xml.logging in ("system-out", "out-err", "all")


def is_infra_call_error(report: pytest.TestReport) -> bool:
    """A call phase that failed on an infrastructure error: the terminal says ERROR."""
    return (report.when == "call" and report.failed
            and (PROP_OUTCOME, "error") in report.user_properties)


def is_teardown_finding(report: pytest.TestReport) -> bool:
    """A sentinel finding failing the teardown: the terminal says FAILED (gate/plugin.py)."""
    return (report.when == "teardown" and report.failed
            and (PROP_OUTCOME, OUTCOME_FINDING) in report.user_properties)


def _retag(xml: LogXML, report: pytest.TestReport, old: str, new: str) -> None:
    """The element LogXML just wrote for ``report`` (its test case is still open after the
    call phase) renamed, with the suite's counts moved along."""
    reporter = xml.node_reporter(report)
    for node in reversed(reporter.nodes):
        if node.tag == old:
            _rename(xml, node, old, new)
            return


def _rename(xml: LogXML, node: ET.Element, old: str, new: str) -> None:
    if node.tag == old:
        node.tag = new
        xml.stats[old] -= 1
        xml.stats[new] += 1


def _add_evidence(xml: LogXML, report: pytest.TestReport, evidence: str) -> None:
    """Sentinel findings after the test had failed: added to its failure's text."""
    reporter = xml.node_reporter(report)
    for node in reversed(reporter.nodes):
        if node.tag in ("failure", "error"):
            node.text = f"{node.text or ''}\n\n{evidence}"
            return


def _write_error(xml: LogXML, left: Unfinished) -> None:
    """An ``<error>`` for a test without an outcome: into the test case LogXML opened for it
    (a cut-off test's setup opened one, nameless until a call reports), else a new one."""
    open_cases = [r for (node_id, _), r in xml.node_reporters.items()
                  if str(node_id) == left.nodeid]
    reporter = open_cases[0] if open_cases else xml.node_reporter(left.nodeid)
    path, _, rest = left.nodeid.partition("::")
    reporter.record_testreport(pytest.TestReport(
        left.nodeid, (path, None, rest), {}, "failed", left.message, "call"))
    for node in [n for n in reporter.nodes if n.tag == "skipped"]:
        reporter.nodes.remove(node)  # skipped in setup, then cut off: the error is the outcome
        xml.stats["skipped"] -= 1
    error = ET.Element("error", message=left.message)
    error.text = left.message
    reporter.append(error)
