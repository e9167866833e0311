"""Merge the per-image reports of CI shards (``--azl-shard i/n``) into one report per image.

Test cases are copied as they are (properties, metrics, failure text). Suite properties
are merged: host, kernel and target lists become their union, ``azl.started`` the earliest
start; counts and time are recomputed. The image records beside the shards' reports
(``*.image.json``) become one, with the union of their hosts.

The same test case in two shards is expected for tests that do not run per host (a test
without host fixtures runs in every shard). With the same outcome one copy is kept. With
different outcomes the worst one is kept (error > failed > skipped > passed) so a failure
is never hidden, the case gets an ``azl.merge.conflict`` property listing each shard's
outcome, and a warning is returned; ``strict`` makes it an error instead.

Except for whole-target checks (``azl.rejudge``, see ``rejudge.py``): each shard judged only
its own hosts, so where every copy passed or failed the case is judged again over the union
of the shards' evidence (``azl.evidence.<host>``), with that verdict and message, and marked
``azl.merge.rejudged`` with what each shard had said. Differing outcomes are then expected
and neither warned about nor an error under ``strict``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReportError
from .compare import report_files, stream_checked
from .image_file import image_path, merge_image_files
from .junit import (
    SerializedCase,
    case_counts,
    case_outcome,
    case_properties,
    serialize_case,
    suite_properties,
    write_serialized,
)
from .model import (
    EVIDENCE_PREFIX,
    PROP_MERGE_REJUDGED,
    PROP_REJUDGE,
    PROP_REJUDGE_TARGET,
    RANK,
    bounded_message,
)
from .rejudge import CHECKS, evidence_of

LIST_PROPERTIES = ("azl.hosts", "azl.kernels", "azl.target")
# The outcomes of a whole-target check that judged its evidence (an error or a skip did not).
JUDGED = frozenset({"passed", "failed"})


@dataclass
class _Case:
    case: SerializedCase
    outcome: str
    shard: str
    seen: list[tuple[str, str]] = field(default_factory=list)  # (shard, outcome)
    # A whole-target check judged in every copy so far: each copy's properties, else None.
    judged: list[dict[str, str]] | None = None


@dataclass
class _Image:
    file_name: str
    props: dict[str, list[str]] = field(default_factory=dict)
    timestamps: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    cases: dict[str, _Case] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the shards' reports of the image


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
            _take_file(images, file, str(shard), warnings, strict)
    written = []
    tests = 0
    for name in sorted(images):
        path = out_dir / images[name].file_name
        try:
            tests += _write_image(path, name, images[name])
        except OSError as exc:
            raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None
        written.append(path)
        # The image records beside the shards' reports, as one beside the merged report.
        merge_image_files([image_path(f) for f in images[name].files], image_path(path), name)
    return MergeResult(written, tests, warnings)


def _take_file(images: dict[str, _Image], file: Path, shard: str, warnings: list[str],
               strict: bool) -> None:
    for kind, name, elem in stream_checked(file):
        name = name or file.stem
        image = images.get(name)
        if image is None:
            image = images[name] = _Image(file.name)
        if kind == "case":
            _take_case(image, name, elem, shard, warnings, strict)
            continue
        image.shards.append(shard)
        image.files.append(file)
        for key, value in suite_properties(elem).items():
            values = image.props.setdefault(key, [])
            if value not in values:
                values.append(value)
        if elem.get("timestamp"):
            image.timestamps.append(elem.get("timestamp", ""))
        if elem.get("hostname"):
            image.hostnames.append(elem.get("hostname", ""))


def _take_case(image: _Image, name: str, case: ET.Element, shard: str, warnings: list[str],
               strict: bool) -> None:
    outcome = case_outcome(case)[0]
    key = f"{case.get('classname', '')}::{case.get('name', '')}"
    props = _judged_properties(case, outcome)
    known = image.cases.get(key)
    if known is None:
        kept = SerializedCase(serialize_case(case), case_counts(case))
        image.cases[key] = _Case(kept, outcome, shard, [(shard, outcome)],
                                 None if props is None else [props])
        return
    known.seen.append((shard, outcome))
    if known.judged is not None:
        if props is not None and props[PROP_REJUDGE] == known.judged[0][PROP_REJUDGE]:
            known.judged.append(props)  # judged again when written: no conflict
            _keep_worst(known, case, outcome, shard)
            return
        known.judged = None  # a copy that judged nothing (error, skip): merged as any test
    if all(o == outcome for _, o in known.seen):
        return
    detail = "; ".join(f"{s}: {o}" for s, o in known.seen)
    if strict:
        raise ReportError(f"{name}: {key} has different outcomes in the shards ({detail})")
    _keep_worst(known, case, outcome, shard)
    warnings.append(f"{name}: {key} differs between shards ({detail}); kept {known.outcome}")


def _keep_worst(known: _Case, case: ET.Element, outcome: str, shard: str) -> None:
    if RANK[outcome] > RANK[known.outcome]:
        known.case = SerializedCase(serialize_case(case), case_counts(case))
        known.outcome, known.shard = outcome, shard


def _write_image(path: Path, name: str, image: _Image) -> int:
    props = {key: _merge_values(key, values) for key, values in image.props.items()}
    props["azl.shards"] = str(len(image.shards))
    targets = image.props.get("azl.target") or image.hostnames
    cases = []
    for key in sorted(image.cases):
        entry = image.cases[key]
        case = entry.case
        if entry.judged is not None and len(entry.judged) > 1:
            case = _rejudged(entry, entry.judged)
        elif len({o for _, o in entry.seen}) > 1:
            case = _with_property(case, "azl.merge.conflict",
                                  "; ".join(f"{s}: {o}" for s, o in entry.seen))
        cases.append(case)
    write_serialized(path, name, cases, props,
                   timestamp=min(image.timestamps) if image.timestamps else None,
                   hostname=_merge_values("azl.target", targets) if targets else None)
    return len(cases)


def _judged_properties(case: ET.Element, outcome: str) -> dict[str, str] | None:
    """The properties of a whole-target check this merge knows that judged its evidence."""
    if outcome not in JUDGED or case.find(f"properties/property[@name='{PROP_REJUDGE}']") is None:
        return None
    props = case_properties(case)
    return props if props.get(PROP_REJUDGE) in CHECKS else None


def _rejudged(entry: _Case, copies: list[dict[str, str]]) -> SerializedCase:
    """The case judged again over the evidence of every shard, as one unsharded run would."""
    evidence: dict[str, str] = {}
    for copy in copies:
        evidence.update(evidence_of(copy))
    check = copies[0][PROP_REJUDGE]
    failure = CHECKS[check](copies[0].get(PROP_REJUDGE_TARGET, ""), evidence)
    elem = ET.fromstring(entry.case.text)
    for child in list(elem):
        if child.tag in ("failure", "error", "skipped"):
            elem.remove(child)
    props = elem.find("properties")
    if props is None:
        props = ET.Element("properties")
        elem.insert(0, props)
    for prop in list(props):
        name = prop.get("name", "")
        if name.startswith(EVIDENCE_PREFIX) or name == PROP_MERGE_REJUDGED:
            props.remove(prop)
    for host, value in sorted(evidence.items()):
        ET.SubElement(props, "property", {"name": f"{EVIDENCE_PREFIX}{host}", "value": value})
    said = "; ".join(f"{shard}: {outcome}" for shard, outcome in entry.seen)
    ET.SubElement(props, "property", {"name": PROP_MERGE_REJUDGED, "value": said})
    if failure:  # worded as the test's pytest.fail(failure) is in an unsharded run
        message = bounded_message(f"Failed: {failure}")
        ET.SubElement(elem, "failure", {"message": message}).text = failure
    return SerializedCase(serialize_case(elem), case_counts(elem))


def _merge_values(key: str, values: list[str]) -> str:
    if key == "azl.started":
        return min(values)
    if len(values) == 1:
        return values[0]
    if key in LIST_PROPERTIES:
        return ",".join(sorted({v for value in values for v in value.split(",") if v}))
    return ",".join(sorted(set(values)))


def _with_property(case: SerializedCase, key: str, value: str) -> SerializedCase:
    elem = ET.fromstring(case.text)
    props = elem.find("properties")
    if props is None:
        props = ET.Element("properties")
        elem.insert(0, props)
    ET.SubElement(props, "property", {"name": key, "value": value})
    return SerializedCase(serialize_case(elem), case.counts)
