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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .junit import build_suite, write_report
from .model import (
    METRIC_PREFIX,
    OUTCOME_FINDING,
    OUTCOME_RERUN,
    PROP_FACTS,
    PROP_HOST,
    PROP_IMAGE,
    PROP_OUTCOME,
    PROP_TARGET,
    SKIP_TYPE_WAIVED,
    WAIVED_FAILURE_SECTION,
    Better,
    CaseRecord,
    Metric,
    is_waived,
    split_nodeid,
)

_PROP_ORDER = ("azl.image", "azl.os_id", "azl.version", "azl.variant", "azl.kernels",
               "azl.node_image_version", "azl.target", "azl.hosts")


@dataclass
class ImageReport:
    """A written per-image report: where, and its counts."""

    name: str
    path: Path
    counts: dict[str, int]


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
    _collected: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)  # tests whose teardown reported
    run_properties: dict[str, str] = field(default_factory=dict)  # added to every suite

    # -- input -----------------------------------------------------------------------------
    def collected(self, nodeid: str, host: str | None, target: str | None) -> None:
        self._collected.setdefault(nodeid, (host, target))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """pytest hook (this object is registered as a plugin on the controller)."""
        self.add(report)

    def add(self, report: pytest.TestReport) -> None:
        if report.outcome == OUTCOME_RERUN:  # gate: an attempt run again; the last one reports
            return
        record = self._records.get(report.nodeid)
        if record is None:
            classname, name = split_nodeid(report.nodeid)
            record = CaseRecord(report.nodeid, classname, name)
            self._records[report.nodeid] = record
        record.time += report.duration
        if report.when == "teardown":
            self._finished.add(report.nodeid)
        self._take_properties(record, report.user_properties)
        outcome = self._outcome(report, record)
        if outcome is None:
            return
        kind, message, details = outcome
        # The worst phase wins: an error in teardown after a failure keeps the failure text.
        rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
        if rank[kind] > rank[record.outcome] or (kind == record.outcome == "skipped"):
            record.outcome = kind  # type: ignore[assignment]
            record.message = self._redact(message)
            record.details = self._redact(details)
            record.skip_type = SKIP_TYPE_WAIVED if _waived(report) else ""

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
                self._merge_facts(json.loads(text))
            elif key == PROP_OUTCOME:
                continue
            elif key.startswith(METRIC_PREFIX):
                name, _, attr = key[len(METRIC_PREFIX):].partition(":")
                metrics[name][attr or "value"] = text
            else:
                record.properties[key] = self._redact(text)
        for name, parts in metrics.items():
            if "value" in parts and all(m.name != name for m in record.metrics):
                better: Better = "lower" if parts.get("better") == "lower" else "higher"
                record.metrics.append(
                    Metric(name, float(parts["value"]), parts.get("unit", ""), better)
                )

    @staticmethod
    def _outcome(
        report: pytest.TestReport, record: CaseRecord
    ) -> tuple[str, str, str] | None:
        infra = any(k == PROP_OUTCOME and v == "error" for k, v in report.user_properties)
        finding = any(k == PROP_OUTCOME and v == OUTCOME_FINDING for k, v in report.user_properties)
        text = str(report.longrepr) if report.longrepr else ""
        if _waived(report):  # gate: a failure a waiver covers; the failure is the details
            assert isinstance(report.longrepr, tuple)
            return "skipped", str(report.longrepr[2]), dict(report.sections).get(
                WAIVED_FAILURE_SECTION, "")
        if report.skipped:
            if isinstance(report.longrepr, tuple):
                return "skipped", str(report.longrepr[2]), ""
            if hasattr(report, "wasxfail"):
                return "skipped", f"xfail: {report.wasxfail}", text
            return "skipped", text, ""
        if report.failed:
            message = _first_line(report)
            if (report.when == "call" and not infra) or finding:
                return "failed", message, text
            phase = "" if report.when == "call" else f"error in {report.when}: "
            return "error", phase + message, text
        if report.when == "call":
            return "passed", "", ""
        return None

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    # -- output ----------------------------------------------------------------------------
    def write(self, interrupted: str | None = None) -> list[ImageReport]:
        records = list(self._records.values())
        for record in records:
            if record.nodeid not in self._finished and record.outcome in ("passed", "skipped"):
                # Cut off while running (Ctrl-C, SIGTERM, a dying worker): never "passed".
                why = interrupted or "its worker or host went away"
                record.outcome = "error"
                record.message = f"interrupted while running: {why}"
        host_image = {r.host: r.image for r in records if r.host and r.image}
        for record in records:
            # Skipped (or failed) before azl_host ran: host and target come from collection,
            # the image from the host's other tests, so the case lands in the host's report.
            host, target = self._collected.get(record.nodeid, (None, None))
            record.host = record.host or host
            record.target = record.target or target
            if record.host and not record.image:
                record.image = host_image.get(record.host)
        for nodeid, (host, target) in self._collected.items():
            if nodeid in self._records:
                continue
            classname, name = split_nodeid(nodeid)
            why = interrupted or "the test never reported (its worker or host went away)"
            records.append(
                CaseRecord(nodeid, classname, name, outcome="error",
                           message=f"not run: {why}", host=host, target=target,
                           image=host_image.get(host) if host else None)
            )
        groups: dict[str, list[CaseRecord]] = defaultdict(list)
        for record in records:
            groups[self._group(record)].append(record)
        written = []
        timestamp = self.started.strftime("%Y-%m-%dT%H:%M:%SZ")
        for group, cases in sorted(groups.items()):
            cases.sort(key=lambda r: r.nodeid)
            for case in cases:
                self._annotate(case)
            props = self._suite_properties(group, cases)
            hostname = props.get("azl.target", "")
            suite = build_suite(group, cases, props, timestamp=timestamp, hostname=hostname)
            path = self.junit_dir / f"{_file_name(group)}.xml"
            write_report(path, suite)
            counts = {k: sum(1 for c in cases if c.outcome == k)
                      for k in ("passed", "failed", "error", "skipped")}
            written.append(ImageReport(group, path, counts))
        return written

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
        for key in ("os_id", "version", "variant", "kernels", "node_image_version"):
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
            if key == "kernels":
                known = entry.setdefault("kernels", [])
                known.extend(k for k in value if k and k not in known)
            elif value:
                entry[key] = value


def facts_property(image: str, os_id: str, version: str, variant: str, kernel: str,
                   node_image_version: str | None) -> str:
    return json.dumps({"image": image, "os_id": os_id, "version": version, "variant": variant,
                       "kernels": [kernel], "node_image_version": node_image_version})


def _waived(report: pytest.TestReport) -> bool:
    return is_waived(report.skipped, report.user_properties)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message).splitlines()[0][:500]
    text = str(report.longrepr or "").strip().splitlines()
    return text[-1][:500] if text else report.outcome


def _file_name(group: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", group)
