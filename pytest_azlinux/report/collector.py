"""Collect test reports on the controller and write one JUnit file per image.

Works the same with and without xdist: everything a report needs travels in the test
report's ``user_properties`` (host, target, image, facts, metrics). Collected tests that
never reported (a crashed worker, Ctrl-C) are written too, as errors saying so.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ..errors import ReportError
from ..redaction import redact
from .compare import ImageRun
from .image_file import HostEntry, image_path, write_image_file
from .junit import write_report
from .model import (
    FAILING,
    METRIC_PREFIX,
    NO_THRESHOLD,
    OUTCOME_FINDING,
    OUTCOME_RERUN,
    OUTCOMES,
    PROP_FACTS,
    PROP_HOST,
    PROP_IMAGE,
    PROP_IMAGE_RECORD,
    PROP_OUTCOME,
    PROP_TARGET,
    PROP_WAIVER_REASON,
    RANK,
    SENTINELS_SECTION,
    WAIVED_FAILURE_SECTION,
    Better,
    CaseRecord,
    Metric,
    bounded_message,
    finding_text,
    is_waived,
    parse_samples,
    split_nodeid,
)
from .output import report_output
from .run_dir import HTML_NAME, clear_run_files
from .skips import Skip, skips_of

_PROP_ORDER = ("azl.image", "azl.os_id", "azl.version", "azl.variant", "azl.kernels",
               "azl.node_image_version", "azl.os_sku", "azl.target", "azl.hosts")
# Facts the hosts of one image may not share (one OS image under two AKS node images, a
# kernel update on some hosts): the suite property lists each, comma-separated.
_MANY = ("kernels", "node_image_version", "os_sku")


@dataclass
class ImageReport:
    """A written per-image report: where, and its counts."""

    name: str
    path: Path
    counts: dict[str, int]
    # "<test> (<host>): <finding>" of the first failures and errors, for the verdict lines.
    findings: list[str] = field(default_factory=list)
    # Metrics recorded with threshold "none": measured, but deciding nothing.
    unjudged: int = 0
    # Its skipped tests, for the skips grouped by reason over the run.
    skips: list[Skip] = field(default_factory=list)


def interruption(session: pytest.Session, exitstatus: int) -> str | None:
    """Why the run ended before its last test, if it did."""
    stopped = session.shouldfail or session.shouldstop  # -x / --maxfail / stepwise
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted"
    if stopped:
        return f"the run stopped early ({stopped})"
    return None


@dataclass(frozen=True)
class Unfinished:
    """A collected test the run left without an outcome: written as an error."""

    nodeid: str
    message: str


@dataclass(eq=False)  # registered as a pytest plugin: must stay hashable
class ReportCollector:
    """Turns the stream of test reports into per-image JUnit files."""

    junit_dir: Path
    plugin_version: str
    secrets: Sequence[str] = ()
    default_target: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _records: dict[str, CaseRecord] = field(default_factory=dict)
    _facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _image_hosts: dict[str, dict[str, HostEntry]] = field(default_factory=dict)  # image -> host
    _image_texts: set[str] = field(default_factory=set)  # the records taken, as sent
    # The facts taken, as sent: every phase of every test of an image's hosts carries the
    # same text (94 000 reports of a 1000-node run, a handful of distinct texts).
    _facts_texts: set[str] = field(default_factory=set)
    _collected: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)  # tests whose teardown reported
    cleared: list[Path] = field(default_factory=list)
    html: Path | None = None
    run_properties: dict[str, str] = field(default_factory=dict)  # added to every suite

    # -- input -----------------------------------------------------------------------------
    def collected(self, nodeid: str, host: str | None, target: str | None) -> None:
        self._collected.setdefault(nodeid, (host, target))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """pytest hook (this object is registered as a plugin on the controller)."""
        self.add(report)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """pytest hook: the run owns its report directory (see ``run_dir``)."""
        if not session.config.option.collectonly:
            self.cleared = clear_run_files(self.junit_dir)

    def add(self, report: pytest.TestReport) -> None:
        if report.outcome == OUTCOME_RERUN:  # gate: an attempt run again; the last one reports
            return
        record = self._records.get(report.nodeid)
        if record is None:
            classname, name = split_nodeid(report.nodeid)
            record = CaseRecord(report.nodeid, classname, name)
            record.host, record.target = self._collected.get(report.nodeid, (None, None))
            self._records[report.nodeid] = record
        record.time += report.duration
        if report.when == "teardown":
            self._finished.add(report.nodeid)
        self._take_properties(record, report.user_properties)
        outcome = self._outcome(report, record)
        if outcome is not None:
            self._judge(record, report, *outcome)
        self._add_sentinel_evidence(record, report)
        output = report_output(report)
        if output:
            record.output += self._redact(output)

    def _judge(self, record: CaseRecord, report: pytest.TestReport, kind: str, message: str,
               details: str) -> None:
        if kind == "skipped" and _waived(report, record):
            kind = "waived"
        # The worst phase wins: an error in teardown after a failure keeps the failure text.
        if RANK[kind] > RANK[record.outcome] or (kind == record.outcome == "skipped"):
            record.outcome = kind  # type: ignore[assignment]
            record.message = self._redact(message)
            record.details = self._redact(details)

    def _add_sentinel_evidence(self, record: CaseRecord, report: pytest.TestReport) -> None:
        """Sentinel findings after the test had failed: its evidence, in its details."""
        evidence = dict(report.sections).get(SENTINELS_SECTION)
        if evidence:
            record.details = "\n\n".join(p for p in (record.details, self._redact(evidence)) if p)

    def _take_properties(self, record: CaseRecord, props: Iterable[tuple[str, object]]) -> None:
        metrics: dict[str, dict[str, str]] = defaultdict(dict)
        for key, value in props:
            text = str(value)
            if key == PROP_HOST:
                record.host = text
            elif key == PROP_TARGET:
                record.target = text
            elif key == PROP_IMAGE:
                record.image = text
            elif key == PROP_FACTS:
                if text not in self._facts_texts:  # merging a text again changes nothing
                    self._facts_texts.add(text)
                    self._merge_facts(json.loads(text))
            elif key == PROP_IMAGE_RECORD:
                if text in self._image_texts:  # every phase of the test carries it
                    continue
                self._image_texts.add(text)
                entry = json.loads(text)
                image, host = str(entry.pop("image")), str(entry.pop("host"))
                if entry.get("packages_note"):  # an error's text: it may quote a command
                    entry["packages_note"] = self._redact(str(entry["packages_note"]))
                self._image_hosts.setdefault(image, {})[host] = entry
            elif key == PROP_OUTCOME:
                continue
            elif key.startswith(METRIC_PREFIX):
                name, _, attr = key[len(METRIC_PREFIX):].partition(":")
                metrics[name][attr or "value"] = text
            else:
                record.properties[key] = self._redact(text)
        for name, parts in metrics.items():
            if "value" in parts and all(m.name != name for m in record.metrics):
                record.metrics.append(_metric(name, parts))

    @staticmethod
    def _outcome(
        report: pytest.TestReport, record: CaseRecord
    ) -> tuple[str, str, str] | None:
        infra = any(k == PROP_OUTCOME and v == "error" for k, v in report.user_properties)
        finding = any(k == PROP_OUTCOME and v == OUTCOME_FINDING for k, v in report.user_properties)
        text = str(report.longrepr) if report.longrepr else ""
        if _waived(report, record):  # a failure a waiver covers; the failure is the details
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else text
            return "skipped", str(reason), dict(report.sections).get(WAIVED_FAILURE_SECTION, "")
        if report.skipped:
            if isinstance(report.longrepr, tuple):
                return "skipped", str(report.longrepr[2]), ""
            if hasattr(report, "wasxfail"):
                return "skipped", f"xfail: {report.wasxfail}", text
            return "skipped", text, ""
        if report.failed:
            message = _failure_message(report)
            if (report.when == "call" and not infra) or finding:
                return "failed", message, text
            if str(report.when) == "???":  # xdist: the worker died while running this test
                host = f" (host {record.host})" if record.host else ""
                return "error", f"{message}{host}", text
            phase = "" if report.when == "call" else f"error in {report.when}: "
            return "error", phase + message, text
        if report.when == "call":
            return "passed", "", ""
        return None

    def _redact(self, text: str) -> str:
        return redact(text, self.secrets)

    # -- output ----------------------------------------------------------------------------
    def unfinished(self, interrupted: str | None = None) -> list[Unfinished]:
        """The collected tests the run left without an outcome, each with why: cut off while
        running (Ctrl-C, SIGTERM, a dying worker: never "passed"), or never run. Both the
        per-image reports and pytest's own ``--junit-xml`` (``pytest_junit``) write them as
        errors."""
        out = []
        for record in self._records.values():
            if record.nodeid not in self._finished and record.outcome in ("passed", "skipped"):
                why = interrupted or "its worker or host went away"
                out.append(Unfinished(record.nodeid, f"interrupted while running: {why}"))
        for nodeid in self._collected:
            if nodeid not in self._records:
                why = interrupted or "the test never reported (its worker or host went away)"
                out.append(Unfinished(nodeid, f"not run: {why}"))
        return out

    def write(self, interrupted: str | None = None) -> list[ImageReport]:
        records = list(self._records.values())
        unfinished = self.unfinished(interrupted)
        for left in unfinished:
            record = self._records.get(left.nodeid)
            if record is not None:
                record.outcome = "error"
                record.message = left.message
        host_image = {r.host: r.image for r in records if r.host and r.image}
        for record in records:
            # Skipped (or failed) before azl_host ran: host and target come from collection,
            # the image from the host's other tests, so the case lands in the host's report.
            host, target = self._collected.get(record.nodeid, (None, None))
            record.host = record.host or host
            record.target = record.target or target
            if record.host and not record.image:
                record.image = host_image.get(record.host)
        for left in unfinished:
            if left.nodeid in self._records:
                continue
            host, target = self._collected[left.nodeid]
            classname, name = split_nodeid(left.nodeid)
            records.append(
                CaseRecord(left.nodeid, classname, name, outcome="error",
                           message=left.message, host=host, target=target,
                           image=host_image.get(host) if host else None)
            )
        groups: dict[str, list[CaseRecord]] = defaultdict(list)
        for record in records:
            groups[self._group(record)].append(record)
        written = []
        images: dict[str, ImageRun] = {}
        timestamp = self.started.strftime("%Y-%m-%dT%H:%M:%SZ")
        for group, cases in sorted(groups.items()):
            cases.sort(key=lambda r: r.nodeid)
            for case in cases:
                self._annotate(case)
            props = self._suite_properties(group, cases)
            hostname = props.get("azl.target", "")
            path = self.junit_dir / f"{_file_name(group)}.xml"
            write_report(path, group, cases, props, timestamp=timestamp, hostname=hostname)
            self._write_image_file(path, group, cases, timestamp)
            # As the report tools read them back: test ids are classname::name.
            read_back = (replace(c, nodeid=f"{c.classname}::{c.name}", image=group)
                         for c in cases)
            images[group] = ImageRun(group, props, {c.nodeid: c for c in read_back}, [path])
            unjudged = sum(1 for c in cases for m in c.metrics if m.threshold == NO_THRESHOLD)
            written.append(ImageReport(group, path, _counts(cases), _findings(cases), unjudged,
                                       skips_of(cases)))
        self.html = self._write_html(images)
        return written

    def _write_html(self, images: dict[str, ImageRun]) -> Path | None:
        """``index.html`` beside the reports; never fails the run over its own rendering."""
        if not images:
            return None
        from .html import write_images

        path = self.junit_dir / HTML_NAME
        try:
            write_images(path, images, sources=[str(self.junit_dir)])
        except (OSError, ReportError) as exc:
            import warnings

            warnings.warn(f"azl: {path}: not written: {exc}", stacklevel=1)
            return None
        return path

    def _write_image_file(self, junit: Path, image: str, cases: list[CaseRecord],
                          timestamp: str) -> None:
        """``<image>.image.json`` beside the report: the facts and packages of the image's
        hosts in this report (those whose first test sent them)."""
        hosts = {c.host for c in cases if c.host}
        entries = {h: e for h, e in self._image_hosts.get(image, {}).items() if h in hosts}
        if not entries:
            return
        try:
            write_image_file(image_path(junit), image, entries, self.plugin_version, timestamp)
        except ReportError as exc:  # the JUnit report stands without it
            import warnings

            warnings.warn(f"azl: {exc}; azl report diff cannot use this run", stacklevel=1)

    def _group(self, record: CaseRecord) -> str:
        if record.image:
            return record.image
        return f"target-{record.target or self.default_target or 'none'}"

    @staticmethod
    def _annotate(case: CaseRecord) -> None:
        if case.host:
            case.properties.setdefault("azl.host", case.host)

    def _suite_properties(self, group: str, cases: list[CaseRecord]) -> dict[str, str]:
        facts = self._facts.get(group, {})
        hosts = sorted({c.host for c in cases if c.host})
        targets = sorted({c.target for c in cases if c.target} or
                         ({self.default_target} if self.default_target else set()))
        props: dict[str, str] = {}
        if not group.startswith("target-"):
            props["azl.image"] = group
        for key in ("os_id", "version", "variant", "kernels", "node_image_version", "os_sku"):
            value = facts.get(key)
            if value:
                text = ",".join(sorted(value)) if isinstance(value, list) else str(value)
                props[f"azl.{key}"] = text
        if targets:
            props["azl.target"] = ",".join(targets)
        if hosts:
            props["azl.hosts"] = ",".join(hosts)
        ordered = {k: props[k] for k in _PROP_ORDER if k in props}
        ordered.update(self.run_properties)
        ordered["azl.plugin_version"] = self.plugin_version
        ordered["azl.started"] = self.started.strftime("%Y-%m-%dT%H:%M:%SZ")
        return ordered

    def _merge_facts(self, facts: dict[str, Any]) -> None:
        entry = self._facts.setdefault(str(facts.get("image")), {})
        for key, value in facts.items():
            if key in _MANY:  # hosts of one image may differ here: every value is kept
                values = value if isinstance(value, list) else [value]
                known = entry.setdefault(key, [])
                known.extend(v for v in values if v and v not in known)
            elif value:
                entry[key] = value


def _counts(cases: list[CaseRecord]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    counts["flaky"] = 0
    for case in cases:
        counts[case.outcome] += 1
        counts["flaky"] += bool(case.flaky_attempts)
    return counts


def _findings(cases: list[CaseRecord], first: int = 5) -> list[str]:
    out = []
    for case in cases:
        if case.outcome in FAILING:
            where = f" ({case.host})" if case.host and case.host not in case.name else ""
            out.append(f"{case.nodeid}{where}: {finding_text(case.message, 200)}")
            if len(out) == first:
                break
    return out


def _waived(report: pytest.TestReport, record: CaseRecord) -> bool:
    """A skipped report of a failure a waiver covers (gate/waivers.py marks it). An xfail
    is the test's own expectation, not a waiver's, even when a waiver matches the test."""
    return report.skipped and not hasattr(report, "wasxfail") and (
        is_waived(report.skipped, report.user_properties)
        or (PROP_OUTCOME, "waived") in report.user_properties
        or bool(record.properties.get(PROP_WAIVER_REASON))
    )


def _metric(name: str, parts: dict[str, str]) -> Metric:
    better: Better = "lower" if parts.get("better") == "lower" else "higher"
    gate = parts.get("gate")
    low, high = parts.get("low"), parts.get("high")
    tolerance = parts.get("tolerance")
    return Metric(name, float(parts["value"]), parts.get("unit", ""), better,
                  low=None if low is None else float(low),
                  high=None if high is None else float(high),
                  gate=None if gate is None else gate in ("True", "true"),
                  threshold=parts.get("threshold"),
                  tolerance=None if tolerance is None else float(tolerance),
                  samples=parse_samples(parts.get("values")))


def _failure_message(report: pytest.TestReport) -> str:
    """The exception's message, every line of it (a headline and its findings), bounded."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = str(crash.message).strip()
    else:
        lines = str(report.longrepr or "").strip().splitlines()
        text = lines[-1] if lines else report.outcome
    return bounded_message(text)


def _file_name(group: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", group)
