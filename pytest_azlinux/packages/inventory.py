"""One package inventory per host, whatever the image keeps: the rpm database (Azure Linux),
SPDX manifests (Azure Container Linux: no rpm database), or dpkg (the lab's Debian userland).

``host_inventory`` is the one owner: every package check (minimum versions, AppArmor's
packages, the hardening baseline) asks it. It reads the three whole-inventory reads of
``sources.py`` together (one round trip, kept by ``host.reads`` for the run), picks the
source (an rpm database that knows packages; else SPDX manifests where there are any; else
dpkg) or the one the profile names (``package_source``), and parses it. A source that
cannot be read, or is not the one the profile names, is a ``PackageInventoryError`` (ERROR):
a package is never "absent" because its list could not be read.

A recording (``kind: recorded``) answers the same reads: a source it knows the image lacks
as a tool that is not there (exit 127 for rpm and dpkg, 3 for no manifest), and raises
``NotRecorded`` for one the image has but the recording does not hold.
"""

from __future__ import annotations

import posixpath
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ManifestError, PackageInventoryError
from ..host import Host
from ..transport.protocol import CommandResult
from .sources import DPKG_ALL, MANIFEST_DIR, MANIFEST_GLOB, RPM_ALL, SPDX_MANIFESTS
from .spdx import BASE_MANIFEST, manifest_origin, parse_manifest, split_manifests
from .versions import EVR, compare_evr

Source = Literal["rpm", "dpkg", "spdx"]  # as the profiles' ``package_source``
RPM_DATABASE = "rpm database"
DPKG = "dpkg"
READS = (RPM_ALL, SPDX_MANIFESTS, DPKG_ALL)


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package: ``evr`` is ``[epoch:]version-release`` as its source gives it;
    ``origin`` where it was listed (``rpm database``, ``dpkg``, ``base image``,
    ``sysext <name>``)."""

    name: str
    evr: str
    arch: str
    origin: str

    @property
    def version(self) -> EVR:
        return EVR.parse(self.evr)


@dataclass(frozen=True)
class Inventory:
    """A host's installed packages. A name may appear more than once (multilib: one per
    arch; a package in the base image and in a system extension); ``files``: the manifests
    read (SPDX), empty for rpm and dpkg."""

    source: Source
    packages: Mapping[str, tuple[Package, ...]]
    files: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, source: Source, packages: Iterable[Package], files: Sequence[str] = ()
    ) -> Inventory:
        grouped: dict[str, list[Package]] = {}
        for p in packages:
            grouped.setdefault(p.name, []).append(p)
        return cls(source, {k: tuple(v) for k, v in grouped.items()}, tuple(files))

    @property
    def count(self) -> int:
        """How many entries (a name listed twice counts twice)."""
        return sum(len(v) for v in self.packages.values())

    def get(self, name: str) -> tuple[Package, ...]:
        return self.packages.get(name, ())

    def __contains__(self, name: object) -> bool:
        return name in self.packages

    def newest(self, name: str) -> Package | None:
        """The entry of ``name`` with the highest version, or None where it is not there."""
        best: Package | None = None
        for p in self.get(name):
            if best is None or compare_evr(p.version, best.version) > 0:
                best = p
        return best

    def versions(self, names: Iterable[str]) -> dict[str, str]:
        """``{name: newest evr}`` of those of ``names`` that are installed."""
        return {n: p.evr for n in names if (p := self.newest(n)) is not None}

    @property
    def where(self) -> str:
        """Where the list came from, for findings: ``rpm database``, ``dpkg`` or ``SPDX
        manifests: package-manifest.spdx.json, ...``."""
        if self.source == "spdx":
            return "SPDX manifests: " + ", ".join(posixpath.basename(f) for f in self.files)
        return RPM_DATABASE if self.source == "rpm" else DPKG


# -- the pure parsers --------------------------------------------------------------------------


def parse_rpm(text: str) -> list[Package]:
    """``RPM_ALL``'s output (``NAME<TAB>[E:]V-R<TAB>ARCH`` per line); the signing keys rpm
    lists as ``gpg-pubkey`` are not packages."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise PackageInventoryError(f"rpm -qa printed a line it never prints: {line[:120]!r}")
        if parts[0] != "gpg-pubkey":
            out.append(Package(parts[0], parts[1], parts[2], RPM_DATABASE))
    return out


def parse_dpkg(text: str) -> list[Package]:
    """``DPKG_ALL``'s output (``NAME<TAB>VERSION<TAB>ARCH<TAB>STATUS``): the installed ones
    (status ``?i``: ``ii``, or ``hi`` when held); names dpkg only remembers are left out."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0]:
            raise PackageInventoryError(
                f"dpkg-query printed a line it never prints: {line[:120]!r}"
            )
        name, version, arch, status = parts
        if len(status) >= 2 and status[1] == "i" and version:
            out.append(Package(name, version, arch, DPKG))
    return out


def parse_spdx(text: str) -> tuple[list[Package], list[str]]:
    """``SPDX_MANIFESTS``'s output: the packages of every manifest, each tagged with the
    manifest it came from, and the manifests' paths (the base image's first)."""
    packages: list[Package] = []
    paths: list[str] = []
    manifests = split_manifests(text)
    manifests.sort(key=lambda m: (posixpath.basename(m[0]) != BASE_MANIFEST, m[0]))
    for path, body in manifests:
        origin = manifest_origin(path)
        packages += [Package(e.name, e.evr, e.arch, origin) for e in parse_manifest(path, body)]
        paths.append(path)
    return packages, paths


# -- the one owner -----------------------------------------------------------------------------


# Each host's inventory, parsed once per run: its reads are kept for the run (``host.reads``),
# and a pool's tests visit every host once per test function, so a cache of the last few
# would parse each host again for each package check.
_PARSED: weakref.WeakKeyDictionary[Host, dict[Source | None, Inventory]] = (
    weakref.WeakKeyDictionary()
)


# Inventories by the answers they were parsed from (the answers' exit codes and output):
# an Inventory is immutable, so hosts that answered alike share one.
_SAME_ANSWERS: dict[tuple[object, ...], Inventory] = {}
_SAME_ANSWERS_KEPT = 16


def host_inventory(host: Host, prefer: Source | None = None) -> Inventory:
    """The installed packages of ``host``, from ``prefer`` (a profile's ``package_source``)
    or from the first source that has them: rpm database, SPDX manifests, dpkg."""
    found = _PARSED.get(host, {}).get(prefer)
    if found is not None:
        return found
    rpm, spdx, dpkg = host.reads.get_all(READS)
    # The nodes of a pool answer alike: one parse for all hosts with the same answers.
    same = (prefer, *((r.rc, r.stdout_bytes) for r in (rpm, spdx, dpkg)))
    found = _SAME_ANSWERS.get(same)
    if found is None:
        try:
            found = inventory_from(rpm, spdx, dpkg, prefer)
        except PackageInventoryError as exc:
            raise type(exc)(f"{host.name}: {exc}") from None
        if len(_SAME_ANSWERS) >= _SAME_ANSWERS_KEPT:
            _SAME_ANSWERS.clear()
        _SAME_ANSWERS[same] = found
    _PARSED.setdefault(host, {})[prefer] = found
    return found


def inventory_from(
    rpm: CommandResult, spdx: CommandResult, dpkg: CommandResult, prefer: Source | None = None
) -> Inventory:
    """The inventory the results of ``READS`` show (pure; ``host_inventory`` without the
    host: a recording's answers go through the same choice)."""
    if prefer in (None, "rpm") and (rpm_packages := _listed(parse_rpm, rpm)):
        return Inventory.of("rpm", rpm_packages)
    has_manifests = spdx.rc not in (3, 127)  # 3: no manifest (127: a recording's "none")
    if prefer in (None, "spdx") and has_manifests:
        return _spdx_inventory(spdx)
    if prefer in (None, "dpkg") and (dpkg_packages := _listed(parse_dpkg, dpkg)):
        return Inventory.of("dpkg", dpkg_packages)
    found = "; ".join([
        _shown(parse_rpm, rpm, "rpm"),
        f"SPDX manifests in {MANIFEST_DIR}" if has_manifests else f"no manifest in {MANIFEST_DIR}",
        _shown(parse_dpkg, dpkg, "dpkg-query"),
    ])  # fmt: skip
    if prefer is None:
        raise PackageInventoryError(f"cannot read the installed packages: {found}")
    expected = {
        "rpm": "an rpm database that lists the installed packages",
        "spdx": f"SPDX package manifests in {MANIFEST_DIR} ({posixpath.basename(MANIFEST_GLOB)})",
        "dpkg": "a dpkg database that lists the installed packages",
    }[prefer]
    error = ManifestError if prefer == "spdx" else PackageInventoryError
    raise error(
        f"the profile's package_source is {prefer}: expected {expected}; found {found}"
    )


def _listed(parse: Callable[[str], list[Package]], result: CommandResult) -> list[Package]:
    return parse(result.stdout) if result.rc == 0 else []


def _shown(parse: Callable[[str], list[Package]], result: CommandResult, what: str) -> str:
    """What one tool showed, for a message."""
    if result.rc == 127:
        return f"no {what}"
    if result.rc != 0:
        return f"{what} failed (exit {result.rc})"
    try:
        n = len(parse(result.stdout))
    except PackageInventoryError:
        return f"{what}: output it never prints"
    return f"{what}: {n} packages" if n else f"{what}: no packages"


def _spdx_inventory(spdx: CommandResult) -> Inventory:
    if spdx.rc != 0:
        why = spdx.stderr.strip().splitlines()[-1:] or [f"exit {spdx.rc}"]
        raise ManifestError(f"cannot read the SPDX manifests in {MANIFEST_DIR}: {why[0]}")
    packages, paths = parse_spdx(spdx.stdout)
    if not paths:
        raise ManifestError(f"reading the SPDX manifests in {MANIFEST_DIR} printed nothing")
    return Inventory.of("spdx", packages, paths)
