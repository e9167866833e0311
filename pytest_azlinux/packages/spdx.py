"""SPDX 2.x JSON package manifests, as immutable images keep them (Azure Container Linux).

ACL has no rpm database: ``/usr/share/os-manifests/package-manifest.spdx.json`` lists the
base image's packages and each merged system extension adds
``package-manifest.<extension>.spdx.json``. Each package is one ``packages[]`` entry:
``name``, ``versionInfo`` (``[epoch:]version-release``) and a purl
``pkg:rpm/azurelinux/<name>@<version>-<release>?arch=<arch>[&epoch=<n>]``. The document also
describes itself as a package (the root: ``SPDXRef-DocumentRoot``, the target of the
document's ``DESCRIBES`` relationship), which is the image, not a package in it: skipped.
(Format: azure-container-linux build_library/rpm/generate_package_manifest.py; the same
rules in ACL's own kola test, azure-container-linux-mantle kola/tests/packages/.)

A manifest that is empty, not JSON, cut short, too large, not SPDX 2, or whose packages lack
a name or version is a ``ManifestError`` naming the file: never "no packages".
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from ..errors import ManifestError
from ..reads import split_sections

# A real base-image manifest of ~700 packages is under 1 MB; far beyond that is not one.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
DOCUMENT = "SPDXRef-DOCUMENT"
BASE_MANIFEST = "package-manifest.spdx.json"
_SYSEXT_MANIFEST = re.compile(r"package-manifest\.(.+)\.spdx\.json")


class ManifestEntry(NamedTuple):
    name: str
    evr: str  # ``[epoch:]version-release`` as versionInfo (and the purl's epoch) give it
    arch: str  # from the purl's ``arch`` qualifier; "" where the entry has no purl


def manifest_origin(path: str) -> str:
    """Where a manifest's packages come from: ``base image``, ``sysext <name>`` (from
    ``package-manifest.<name>.spdx.json``), or the file name of any other manifest."""
    name = posixpath.basename(path)
    if name == BASE_MANIFEST:
        return "base image"
    m = _SYSEXT_MANIFEST.fullmatch(name)
    return f"sysext {m.group(1)}" if m else name


def split_manifests(text: str) -> list[tuple[str, str]]:
    """``(path, json text)`` per ``==> PATH`` section of the ``SPDX_MANIFESTS`` read."""
    return [(path, s.text) for path, s in split_sections(text).items()]


def parse_manifest(path: str, text: str) -> list[ManifestEntry]:
    """The packages one manifest lists (the document root left out)."""
    if len(text) > MAX_MANIFEST_BYTES:  # characters: at most as many as bytes
        raise ManifestError(
            f"{path}: over {MAX_MANIFEST_BYTES} bytes, more than a package manifest may have"
        )
    if not text.strip():
        raise ManifestError(f"{path}: empty (no SPDX document)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = " (cut short)" if _open_at_end(text) else ""
        raise ManifestError(
            f"{path}: not valid JSON{cut}: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ManifestError(f"{path}: not valid JSON: nested too deep") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: not an SPDX document (the JSON is a {type(doc).__name__})")
    version = doc.get("spdxVersion")
    if not isinstance(version, str) or not version.startswith("SPDX-2."):
        raise ManifestError(f"{path}: not an SPDX 2 document (spdxVersion: {version!r})")
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise ManifestError(f"{path}: no packages array")
    roots = _described(doc)
    out: list[ManifestEntry] = []
    for i, entry in enumerate(packages):
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: packages[{i}] is not an object")
        if entry.get("SPDXID") in roots:
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ManifestError(f"{path}: packages[{i}] has no name")
        evr = entry.get("versionInfo")
        if not isinstance(evr, str) or not evr.strip():
            raise ManifestError(f"{path}: packages[{i}] ({name}) has no versionInfo")
        arch, epoch = _purl_arch_epoch(entry)
        if epoch is not None and ":" not in evr:
            evr = f"{epoch}:{evr}"
        out.append(ManifestEntry(name, evr, arch))
    if not out:
        raise ManifestError(f"{path}: lists no packages (only the document itself)")
    return out


def _open_at_end(text: str) -> bool:
    """Whether the text ends inside a string, object or array: a document cut short."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return in_string or depth > 0


def _described(doc: dict[str, Any]) -> set[str]:
    """The SPDX ids the document describes (its subject, e.g. the image): the root."""
    roots = {"SPDXRef-DocumentRoot"}
    described = doc.get("documentDescribes")
    if isinstance(described, list):
        roots.update(d for d in described if isinstance(d, str))
    relationships = doc.get("relationships")
    for rel in relationships if isinstance(relationships, list) else ():
        if (
            isinstance(rel, dict)
            and rel.get("relationshipType") == "DESCRIBES"
            and rel.get("spdxElementId") == DOCUMENT
            and isinstance(rel.get("relatedSpdxElement"), str)
        ):
            roots.add(rel["relatedSpdxElement"])
    return roots


def _purl_arch_epoch(entry: dict[str, Any]) -> tuple[str, str | None]:
    """The ``arch`` and ``epoch`` qualifiers of the entry's rpm purl ("" and None without)."""
    refs = entry.get("externalRefs")
    for ref in refs if isinstance(refs, list) else ():
        if not isinstance(ref, dict) or ref.get("referenceType") != "purl":
            continue
        locator = ref.get("referenceLocator")
        if not isinstance(locator, str) or not locator.startswith("pkg:"):
            continue
        _, _, query = locator.partition("?")
        qualifiers = parse_qs(query.partition("#")[0])
        arch = qualifiers.get("arch", [""])[0]
        epoch = qualifiers.get("epoch", [None])[0]
        return arch, epoch if epoch is not None and epoch.isdigit() else None
    return "", None
