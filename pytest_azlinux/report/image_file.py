"""A run's image facts: one ``<image>.image.json`` beside each per-image JUnit file.

What a run saw of each image, so ``azl report diff`` can say what changed between two runs
(or between a run and a recorded image) without the hosts: per host its os-release, running
kernel, arch, node image version and every installed package (name -> ``[[evr, arch], ...]``,
from the host's inventory: rpm, dpkg or SPDX manifests). Hosts with the same package list
share one entry of ``package_lists`` (a pool of 1000 nodes of one image keeps one list).
A host whose inventory could not be read has ``"packages": null`` and a
``"packages_note"`` saying why: never an empty list. The file::

    {"generator": "pytest-azlinux", "format": 1, "image": "azurelinux-3.0.20251021",
     "plugin_version": "0.1.0", "started": "2026-12-07T22:00:00Z",
     "hosts": {"azl-1": {"os_release": {"ID": "azurelinux", ...}, "kernel": "6.6...",
                         "arch": "x86_64", "node_image_version": null,
                         "packages": 0, "packages_source": "rpm"}},
     "package_lists": [{"bash": [["5.2.15-3.azl3", "x86_64"]], ...}]}

The test side builds one host's entry (``host_entry``) once per host and process and sends it
to the controller in a test report's user properties (``azl.image_record``), as everything a
report needs travels; the collector writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ReportError
from .image_diff import ImageRecord, Installed

SUFFIX = ".image.json"
GENERATOR = "pytest-azlinux"
FORMAT = 1
_HEAD_MARK = b'"generator": "pytest-azlinux"'

HostEntry = dict[str, Any]  # one host's facts and packages, as sent and as written


def image_path(junit_path: Path) -> Path:
    """``reports/<image>.xml`` -> ``reports/<image>.image.json``."""
    return junit_path.with_name(junit_path.stem + SUFFIX)


def host_entry(os_release: Mapping[str, str], kernel: str, arch: str,
               node_image_version: str | None,
               packages: Mapping[str, Sequence[tuple[str, str]]] | None,
               source: str = "", note: str = "") -> HostEntry:
    """One host's entry; ``packages`` None when the inventory could not be read (``note``:
    why)."""
    entry: HostEntry = {"os_release": dict(os_release), "kernel": kernel, "arch": arch,
                        "node_image_version": node_image_version}
    if packages is None:
        entry["packages"] = None
        entry["packages_note"] = note or "the package inventory was not read"
    else:
        entry["packages"] = {
            name: [list(versions[0])] if len(versions) == 1 else sorted(map(list, versions))
            for name, versions in sorted(packages.items())}
        entry["packages_source"] = source
    return entry


def write_image_file(path: Path, image: str, hosts: Mapping[str, HostEntry],
                     plugin_version: str, started: str) -> Path:
    """Write ``path`` (hosts sorted, identical package lists stored once)."""
    lists: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    out_hosts: dict[str, HostEntry] = {}
    for name in sorted(hosts):
        entry = dict(hosts[name])
        packages = entry.get("packages")
        if packages is not None:
            key = json.dumps(packages, sort_keys=True)
            if key not in index:
                index[key] = len(lists)
                lists.append(packages)
            entry["packages"] = index[key]
        out_hosts[name] = entry
    doc = {"generator": GENERATOR, "format": FORMAT, "image": image,
           "plugin_version": plugin_version, "started": started,
           "hosts": out_hosts, "package_lists": None}
    head = json.dumps(doc, indent=1)
    # One package per line: small, and ``grep '"openssl"' reports/*.image.json`` works.
    body = ",\n".join("  {\n" + ",\n".join(
        f"   {json.dumps(name)}: {json.dumps(versions, separators=(',', ':'))}"
        for name, versions in packages.items()) + "\n  }" for packages in lists)
    text = head.replace('"package_lists": null', f'"package_lists": [\n{body}\n ]'
                        if lists else '"package_lists": []')
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


def is_own_image_file(path: Path) -> bool:
    """A file this plugin wrote (``run_dir`` removes it at the start of the next run)."""
    try:
        with path.open("rb") as fh:
            return _HEAD_MARK in fh.read(256)
    except OSError:
        return False


@dataclass(frozen=True)
class ImageFile:
    """A run's ``*.image.json``, read back: the image and its hosts as records."""

    path: Path
    image: str
    hosts: dict[str, ImageRecord]


def read_image_file(path: Path) -> ImageFile:
    """Read and check one file; anything malformed is a ``ReportError`` naming it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not an image record (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("generator") != GENERATOR:
        raise ReportError(f"{path}: not an image record of pytest-azlinux (no generator)")
    if doc.get("format") != FORMAT:
        raise ReportError(f"{path}: image record format {doc.get('format')!r} is not "
                          f"{FORMAT} (written by another version)")
    image, hosts, lists = doc.get("image"), doc.get("hosts"), doc.get("package_lists")
    if not isinstance(image, str) or not isinstance(hosts, dict) or not isinstance(lists, list):
        raise ReportError(f"{path}: image record lacks 'image', 'hosts' or 'package_lists'")
    parsed = [_packages(path, i, raw) for i, raw in enumerate(lists)]
    records = {str(name): _record(path, image, str(name), entry, parsed)
               for name, entry in sorted(hosts.items())}
    return ImageFile(path, image, records)


def merge_image_files(sources: Sequence[Path], out: Path, image: str) -> Path | None:
    """One image's records of several shards as one (``azl report merge``): the union of
    their hosts (a host in two shards: the first shard's). None when no shard has one."""
    hosts: dict[str, HostEntry] = {}
    meta: list[tuple[str, str]] = []  # (started, plugin version) of each shard's record
    for source in sources:
        if not source.is_file():
            continue
        found = read_image_file(source)  # checks it; the raw entries below keep its form
        doc = json.loads(source.read_text(encoding="utf-8"))
        lists = doc["package_lists"]
        meta.append((str(doc.get("started", "")), str(doc.get("plugin_version", ""))))
        for name in found.hosts:
            entry = dict(doc["hosts"][name])
            if entry.get("packages") is not None:
                entry["packages"] = lists[entry["packages"]]
            hosts.setdefault(name, entry)
    if not meta:
        return None
    started, version = min(meta)
    return write_image_file(out, image, hosts, version, started)


def _packages(path: Path, index: int, raw: object) -> dict[str, tuple[Installed, ...]]:
    where = f"{path}: package_lists[{index}]"
    if not isinstance(raw, dict):
        raise ReportError(f"{where}: expected a mapping name -> [[evr, arch], ...]")
    out: dict[str, tuple[Installed, ...]] = {}
    for name, versions in raw.items():
        if not isinstance(versions, list) or not all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
                for v in versions):
            raise ReportError(f"{where}.{name}: expected [[evr, arch], ...], got {versions!r}")
        out[str(name)] = tuple(Installed(evr, arch) for evr, arch in versions)
    return out


def _record(path: Path, image: str, host: str, entry: object,
            lists: list[dict[str, tuple[Installed, ...]]]) -> ImageRecord:
    where = f"{path}: hosts.{host}"
    if not isinstance(entry, dict):
        raise ReportError(f"{where}: expected a mapping")
    osr = entry.get("os_release") or {}
    if not isinstance(osr, dict):
        raise ReportError(f"{where}.os_release: expected a mapping")
    ref = entry.get("packages")
    packages = None
    if ref is not None:
        if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(lists):
            raise ReportError(f"{where}.packages: expected an index into package_lists "
                              f"(0..{len(lists) - 1}), got {ref!r}")
        packages = lists[ref]
    return ImageRecord(
        label=f"{path.parent}: {image} on {host}",
        os_release={str(k): str(v) for k, v in osr.items()},
        kernel=str(entry.get("kernel") or ""), arch=str(entry.get("arch") or ""),
        node_image_version=entry.get("node_image_version") or None,
        packages=packages,
        packages_note=str(entry.get("packages_note") or ""),
        packages_source=str(entry.get("packages_source") or ""),
    )
