"""AgentBaker node-image release notes: what one shipped AKS node image recorded of itself.

Azure/AgentBaker publishes ``vhdbuilder/release-notes/<SKU>/<flavour>/<YYYYMM.DD.N>.txt`` for
every node image it ships. The parts read here:

- ``Components downloaded in this VHD build ...`` then ``  - <component> ...`` lines;
- ``=== Installed Packages Begin`` / ``End``: ``rpm -qa`` lines (``name-version-release.arch``,
  no epoch). ACL (no rpm database) writes the single line ``listInstalledPackages stub``:
  its packages are *not recorded* there (``packages`` is None, never an empty list);
- ``=== os-release Begin`` / ``End``: ``/etc/os-release``;
- ``Using kernel:`` and, on the next line, ``/proc/version`` (OS Guard images have none; they
  record ``=== OS Guard Info === Begin`` / ``End``: the sha256 and path of the UKI);
- ``FIPS enabled: <bool>`` (spelled ``false``, ``False``, ``True``).

``parse_release_notes`` is pure; ``load`` reads the file. A file that is not one of these
(binary, no os-release section, a section begun and never ended) is a ``RecordingError``:
one line naming the file and what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RecordingError

NODE_IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
STUB = "listInstalledPackages stub"
_VERSION = re.compile(r"\d{6}\.\d{2}\.\d+")
_BEGIN = re.compile(r"^=== (.+?) (?:=== )?Begin$")
_END = re.compile(r"^=== (.+?) (?:=== )?End$")
_COMPONENT = re.compile(r"^  - (\S.*)$")
_PROC_VERSION = re.compile(r"^Linux version (\S+) ")
_FIPS = re.compile(r"^FIPS enabled:\s*(\S*)\s*$", re.IGNORECASE)
_NVR = re.compile(r"^(?P<name>\S+)-(?P<version>[^-\s]+)-(?P<release>[^-\s]+)$")
# rpm prints no arch for a package without one (gpg-pubkey-3135ce90-5e6fda74)
ARCHES = frozenset({"x86_64", "aarch64", "noarch", "i686", "i386", "ppc64le", "s390x"})
_UKI = re.compile(r"^[0-9a-f]{64}\s+(/\S+\.efi)$")

# (release-notes SKU directory, flavour directory) -> (gallery, image definition): the label
# ``kubernetes.azure.com/node-image-version`` is ``<gallery>-<definition>-<version>``.
# Gallery and definitions: Azure/AgentBaker pkg/agent/datamodel/sig_config.go; the label's
# shape: the AKS node-image-versions API as recorded in Azure/karpenter-provider-azure
# pkg/fake/nodeimageversionsapi.go (e.g. AKSAzureLinux-V3gen2-202505.27.0,
# AKSAzureLinux-OSGuardV3gen2fipsTL-202512.18.0). See tests/data/agentbaker/PROVENANCE.md.
# ACL's definitions are AgentBaker's; its label follows the same rule (not seen in API data).
SIG_DEFINITIONS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("AKSAzureLinuxV3", "gen1"): ("AKSAzureLinux", "V3"),
    ("AKSAzureLinuxV3", "gen1fips"): ("AKSAzureLinux", "V3fips"),
    ("AKSAzureLinuxV3", "gen2"): ("AKSAzureLinux", "V3gen2"),
    ("AKSAzureLinuxV3", "gen2fips"): ("AKSAzureLinux", "V3gen2fips"),
    ("AKSAzureLinuxV3", "gen2arm64"): ("AKSAzureLinux", "V3gen2arm64"),
    ("AKSAzureLinuxV3", "gen2arm64fips"): ("AKSAzureLinux", "V3gen2arm64fips"),
    ("AKSAzureLinuxV3", "gen2tl"): ("AKSAzureLinux", "V3gen2TL"),
    ("AKSAzureLinuxV3", "gen2kata"): ("AKSAzureLinux", "V3katagen2"),
    ("AKSAzureLinuxV3", "cvmgen2"): ("AKSAzureLinux", "V3gen2CVM"),
    ("AKSAzureLinuxV3", "osguardgen2fipstl"): ("AKSAzureLinux", "OSGuardV3gen2fipsTL"),
    ("AKSAzureContainerLinux", "gen2tl"): ("AKSAzureLinux", "aclgen2TL"),
    ("AKSAzureContainerLinux", "arm64gen2tl"): ("AKSAzureLinux", "aclgen2arm64TL"),
}


@dataclass(frozen=True)
class RecordedPackage:
    """One ``rpm -qa`` line: ``name``, ``version-release`` (the epoch is not recorded), arch
    (empty for a package without one: ``gpg-pubkey``)."""

    name: str
    evr: str
    arch: str


@dataclass(frozen=True)
class RecordedImage:
    """What one release-notes file holds. ``recorded`` names the parts it holds:
    ``os-release``, ``packages``, ``kernel`` (/proc/version), ``arch``, ``fips``,
    ``components``, ``uki``; a part not named there is None (or empty)."""

    path: Path
    sku: str | None
    flavour: str | None
    version: str | None  # YYYYMM.DD.N, from the file name
    node_image_version: str | None  # the node label's value, where its shape is known
    os_release: Mapping[str, str]
    proc_version: str | None
    kernel_release: str | None
    arch: str | None
    fips: bool | None
    packages: tuple[str, ...] | None  # NEVRA lines in file order; None: not recorded
    package_entries: tuple[RecordedPackage, ...] | None
    components: tuple[str, ...]
    uki: str | None  # OS Guard: the UKI's path on the ESP
    recorded: frozenset[str] = field(default_factory=frozenset)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def labels(self) -> dict[str, str]:
        """The node labels this image's nodes carry that the recording tells."""
        return {NODE_IMAGE_LABEL: self.node_image_version} if self.node_image_version else {}


def parse_nevra(line: str) -> RecordedPackage | None:
    """``name-version-release.arch`` (or without ``.arch``, as rpm prints a package that has
    none) -> its parts; None: not in that shape."""
    nvr, dot, arch = line.rpartition(".")
    if not dot or arch not in ARCHES:
        nvr, arch = line, ""
    m = _NVR.match(nvr)
    if m is None:
        return None
    return RecordedPackage(m["name"], f"{m['version']}-{m['release']}", arch)


def node_image_version(sku: str | None, flavour: str | None, version: str | None) -> str | None:
    """The ``kubernetes.azure.com/node-image-version`` value, where the SKU is known."""
    found = SIG_DEFINITIONS.get((sku or "", flavour or ""))
    if found is None or version is None:
        return None
    return f"{found[0]}-{found[1]}-{version}"


def _sections(lines: list[str], where: str) -> dict[str, list[str]]:
    """``=== NAME Begin`` ... ``=== NAME End`` blocks; one begun and never ended is an error."""
    out: dict[str, list[str]] = {}
    open_name: str | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        begin, end = _BEGIN.match(line), _END.match(line)
        if open_name is None:
            if begin:
                open_name, body = begin.group(1), []
            elif end:
                raise RecordingError(f"{where}: line {number}: '{line}' without its Begin")
            continue
        if end and end.group(1) == open_name:
            out[open_name] = body
            open_name = None
        elif begin:
            raise RecordingError(
                f"{where}: line {number}: '{line}' inside '{open_name}' (its End is missing)")
        else:
            body.append(line)
    if open_name is not None:
        raise RecordingError(f"{where}: '=== {open_name} Begin' without its End (cut short?)")
    return out


def _os_release(body: list[str]) -> dict[str, str]:
    from ..facts import parse_key_values  # the one os-release parser

    return parse_key_values("\n".join(body))


def parse_release_notes(text: str, path: Path | str) -> RecordedImage:
    """The recorded image in ``text``, the content of the release-notes file ``path`` (its
    directory names the SKU and flavour, its name the version)."""
    path = Path(path)
    where = str(path)
    if "\0" in text:
        raise RecordingError(f"{where}: not a release-notes file (binary content)")
    lines = text.splitlines()
    sections = _sections(lines, where)
    if "os-release" not in sections:
        raise RecordingError(
            f"{where}: not an AgentBaker release-notes file: no '=== os-release Begin' section")
    os_release = _os_release(sections["os-release"])
    if not os_release.get("ID"):
        raise RecordingError(f"{where}: the os-release section has no ID= line")

    recorded = {"os-release"}
    proc_version = None
    for i, line in enumerate(lines):
        if line.strip() == "Using kernel:":
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not _PROC_VERSION.match(following):
                raise RecordingError(
                    f"{where}: line {i + 2}: 'Using kernel:' is not followed by /proc/version")
            proc_version = following
    kernel_release = None
    if proc_version is not None:
        m = _PROC_VERSION.match(proc_version)
        kernel_release = m.group(1) if m else None
        recorded.add("kernel")

    fips = None
    for line in lines:
        m = _FIPS.match(line)
        if m:
            word = m.group(1).lower()
            if word not in ("true", "false"):
                raise RecordingError(f"{where}: 'FIPS enabled:' is {m.group(1)!r}, not a bool")
            fips = word == "true"
            recorded.add("fips")

    packages: tuple[str, ...] | None = None
    entries: tuple[RecordedPackage, ...] | None = None
    body = sections.get("Installed Packages")
    if body is not None and [line.strip() for line in body if line.strip()] != [STUB]:
        packages = tuple(line.strip() for line in body if line.strip())
        parsed = []
        for line in packages:
            entry = parse_nevra(line)
            if entry is None:
                raise RecordingError(
                    f"{where}: installed package {line!r} is not name-version-release.arch")
            parsed.append(entry)
        if not parsed:
            raise RecordingError(f"{where}: the Installed Packages section is empty")
        entries = tuple(parsed)
        recorded.add("packages")

    arch = _kernel_arch(entries, kernel_release)
    if arch is not None:
        recorded.add("arch")

    components = tuple(
        m.group(1).strip() for m in map(_COMPONENT.match, _component_lines(lines)) if m)
    if components:
        recorded.add("components")

    uki = None
    for line in sections.get("OS Guard Info", ()):
        m = _UKI.match(line.strip())
        if m:
            uki = m.group(1)
            recorded.add("uki")

    version = path.stem if _VERSION.fullmatch(path.stem) else None
    flavour = path.parent.name or None
    sku = path.parent.parent.name or None
    return RecordedImage(
        path=path,
        sku=sku,
        flavour=flavour,
        version=version,
        node_image_version=node_image_version(sku, flavour, version),
        os_release=os_release,
        proc_version=proc_version,
        kernel_release=kernel_release,
        arch=arch,
        fips=fips,
        packages=packages,
        package_entries=entries,
        components=components,
        uki=uki,
        recorded=frozenset(recorded),
    )


def _component_lines(lines: list[str]) -> list[str]:
    """The ``  - ...`` lines under ``Components downloaded in this VHD build``."""
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("Components downloaded"):
            inside = True
            continue
        if inside:
            if not line.startswith("  - "):
                break
            out.append(line)
    return out


def _kernel_arch(entries: tuple[RecordedPackage, ...] | None,
                 release: str | None) -> str | None:
    """The arch of the kernel package (the running kernel's where /proc/version names it)."""
    kernels = [e for e in entries or () if e.name == "kernel" or e.name.startswith("kernel-")]
    if release is not None:
        running = [e for e in kernels if e.evr == release]
        kernels = running or kernels
    arches = {e.arch for e in kernels if e.arch not in ("noarch", "")}
    return arches.pop() if len(arches) == 1 else None


def load(path: Path | str) -> RecordedImage:
    """Read and parse the release-notes file ``path``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: not a release-notes file (not UTF-8 text)") from None
    return parse_release_notes(text, path)
