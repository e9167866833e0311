"""Merge the per-image reports of CI shards (``--azl-shard i/n``) into one report per image.

Test cases are copied as they are (properties, metrics, failure text). Suite properties
are merged: host, kernel and target lists become their union, ``azl.started`` the earliest
start; counts and time are recomputed.

The same test case in two shards is expected for tests that do not run per host (a test
without host fixtures runs in every shard). With the same outcome one copy is kept. With
different outcomes the worst one is kept (error > failed > skipped > passed) so a failure
is never hidden, the case gets an ``azl.merge.conflict`` property listing each shard's
outcome, and a warning is returned; ``strict`` makes it an error instead.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReportError
from .compare import parse_report, report_files
from .junit import assemble_suite, case_outcome, suite_properties, write_report
from .model import RANK

LIST_PROPERTIES = ("azl.hosts", "azl.kernels", "azl.target")


@dataclass
class _Case:
    case: ET.Element
    outcome: str
    shard: str
    seen: list[tuple[str, str]] = field(default_factory=list)  # (shard, outcome)


@dataclass
class _Image:
    file_name: str
    props: dict[str, list[str]] = field(default_factory=dict)
    timestamps: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    cases: dict[str, _Case] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)


@dataclass
class MergeResult:
    written: list[Path]
    tests: int
    warnings: list[str]


def merge_shards(out_dir: Path, shard_dirs: Sequence[Path], *, strict: bool = False) -> MergeResult:
    if not shard_dirs:
        raise ReportError("merge: give at least one shard directory")
    out_resolved = out_dir.resolve()
    images: dict[str, _Image] = {}
    warnings: list[str] = []
    for shard in shard_dirs:
        if shard.resolve() == out_resolved:
            raise ReportError(f"{shard}: the output directory cannot also be a shard")
        files = report_files(shard)
        for file in files:
            for suite in parse_report(file):
                _take_suite(images, suite, file, str(shard), warnings, strict)
    written = []
    tests = 0
    for name in sorted(images):
        suite = _build_suite(name, images[name])
        tests += int(suite.get("tests", 0))
        path = out_dir / images[name].file_name
        try:
            write_report(path, suite)
        except OSError as exc:
            raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None
        written.append(path)
    return MergeResult(written, tests, warnings)


def _take_suite(images: dict[str, _Image], suite: ET.Element, file: Path, shard: str,
                warnings: list[str], strict: bool) -> None:
    name = suite.get("name") or file.stem
    image = images.setdefault(name, _Image(file.name))
    image.shards.append(shard)
    for key, value in suite_properties(suite).items():
        values = image.props.setdefault(key, [])
        if value not in values:
            values.append(value)
    if suite.get("timestamp"):
        image.timestamps.append(suite.get("timestamp", ""))
    if suite.get("hostname"):
        image.hostnames.append(suite.get("hostname", ""))
    for case in suite:
        if case.tag != "testcase":
            continue
        outcome = case_outcome(case)[0]
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        known = image.cases.get(key)
        if known is None:
            image.cases[key] = _Case(case, outcome, shard, [(shard, outcome)])
            continue
        known.seen.append((shard, outcome))
        if all(o == outcome for _, o in known.seen):
            continue
        detail = "; ".join(f"{s}: {o}" for s, o in known.seen)
        if strict:
            raise ReportError(f"{name}: {key} has different outcomes in the shards ({detail})")
        if RANK[outcome] > RANK[known.outcome]:
            known.case, known.outcome, known.shard = case, outcome, shard
        warnings.append(f"{name}: {key} differs between shards ({detail}); "
                        f"kept {known.outcome}")


def _build_suite(name: str, image: _Image) -> ET.Element:
    props = {key: _merge_values(key, values) for key, values in image.props.items()}
    props["azl.shards"] = str(len(image.shards))
    targets = image.props.get("azl.target") or image.hostnames
    cases = []
    for key in sorted(image.cases):
        entry = image.cases[key]
        if len({o for _, o in entry.seen}) > 1:
            _set_property(entry.case, "azl.merge.conflict",
                          "; ".join(f"{s}: {o}" for s, o in entry.seen))
        _strip_layout(entry.case)
        cases.append(entry.case)
    return assemble_suite(name, props, cases,
                          timestamp=min(image.timestamps) if image.timestamps else None,
                          hostname=_merge_values("azl.target", targets) if targets else None)


def _merge_values(key: str, values: list[str]) -> str:
    if key == "azl.started":
        return min(values)
    if len(values) == 1:
        return values[0]
    if key in LIST_PROPERTIES:
        return ",".join(sorted({v for value in values for v in value.split(",") if v}))
    return ",".join(sorted(set(values)))


def _strip_layout(elem: ET.Element) -> None:
    """Drop the source file's indentation so the writer indents the case afresh."""
    for node in elem.iter():
        if node.tail is not None and not node.tail.strip():
            node.tail = None
        if len(node) and node.text is not None and not node.text.strip():
            node.text = None


def _set_property(case: ET.Element, key: str, value: str) -> None:
    props = case.find("properties")
    if props is None:
        props = ET.Element("properties")
        case.insert(0, props)
    ET.SubElement(props, "property", {"name": key, "value": value})
