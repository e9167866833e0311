"""ImageFacts: what image a machine runs, from its identity files, and the image key.

The parsing is pure (``parse_facts`` takes the text one command prints) so it is tested on
the real files of Azure Linux 3.0 and CBL-Mariner 2.0; ``FACTS`` is that command, read
through ``host.reads`` like every other evidence.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .reads import Read, split_sections

FACT_FILES = (
    "/etc/os-release",
    "/etc/azurelinux-release",
    "/etc/mariner-release",
    "/etc/lsb-release",
)
FACTS_SCRIPT = (
    "for f in " + " ".join(FACT_FILES) + "; do "
    "if [ -r \"$f\" ]; then printf '==> %s\\n' \"$f\"; cat \"$f\"; echo; fi; done; "
    "printf '==> uname\\n'; uname -r; uname -m; "
    "printf '==> cmdline\\n'; cat /proc/cmdline 2>/dev/null; "
    "printf '==> hostname\\n'; hostname 2>/dev/null || cat /proc/sys/kernel/hostname"
)
FACTS = Read(FACTS_SCRIPT, sudo=False)  # read by ``Host.facts``, once per host
# A recording's answer to FACTS names, in this section, the facts it does not hold.
NOT_RECORDED = "not-recorded"
MISSING_FACTS = ("kernel", "arch", "cmdline", "release_files")
# Labels AKS sets on every node (reserved: users cannot change them): the node image and its
# OS SKU. os-sku is what the pool was created with (``AzureLinux``), os-sku-requested the
# SKU as the API request spelled it, os-sku-effective the versioned SKU the node runs
# (``AzureLinux3``). Sources: learn.microsoft.com/azure/aks/use-labels (reserved system
# labels); Azure/karpenter-provider-azure hack/validation/aks_requirements.sh
# (commit cc4512ff6b6e1462a46d5042bc2b2354bfd6a0d2), the labels AKS manages.
LABEL_NODE_IMAGE = "kubernetes.azure.com/node-image-version"
LABEL_OS_SKU = "kubernetes.azure.com/os-sku"
LABEL_OS_SKU_EFFECTIVE = "kubernetes.azure.com/os-sku-effective"
LABEL_OS_SKU_REQUESTED = "kubernetes.azure.com/os-sku-requested"
_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImageFacts:
    """Identity of the image a host runs, as read from the host itself."""

    os_id: str
    version: str
    version_id: str
    name: str = ""
    pretty_name: str = ""
    variant_id: str | None = None
    variant: str | None = None
    build_number: str | None = None
    lsb_release: str | None = None
    kernel: str = ""
    arch: str = ""
    cmdline: tuple[str, ...] = ()
    hostname: str = ""
    node_image_version: str | None = None  # AKS nodes: the node image (LABEL_NODE_IMAGE)
    os_sku: str | None = None  # AKS nodes: LABEL_OS_SKU
    os_sku_effective: str | None = None  # AKS nodes: LABEL_OS_SKU_EFFECTIVE
    os_sku_requested: str | None = None  # AKS nodes: LABEL_OS_SKU_REQUESTED
    os_release: Mapping[str, str] = field(default_factory=dict)
    release_files: Mapping[str, str] = field(default_factory=dict)
    # facts a recording does not hold (``kernel``, ``arch``, ``cmdline``, ``release_files``),
    # from its ``not-recorded`` section; a live host shows them all (empty)
    missing: frozenset[str] = frozenset()

    @property
    def image_key(self) -> str:
        """The name reports are grouped by, e.g. ``azurelinux-3.0.20251021-osguard``."""
        parts = [self.os_id or "unknown", self.version or self.version_id or "unknown"]
        if self.variant_id:
            parts.append(self.variant_id)
        return _KEY_CHARS.sub("_", "-".join(parts))

    @property
    def kernel_flavour(self) -> str:
        """``hwe`` for 6.12 kernels of Azure Linux 3.0, ``mshv``, ``rt``... else ``default``."""
        release = self.kernel
        for flavour in ("mshv", "rt", "64k", "uvm", "ipe"):
            if f".{flavour}" in release or f"-{flavour}" in release:
                return flavour
        if self.os_id == "azurelinux" and kernel_series(release) >= (6, 12):
            return "hwe"
        return "default"

    @property
    def variant_name(self) -> str:
        return self.variant_id or "default"

    def cmdline_value(self, key: str) -> str | None:
        """The value of ``key=`` on the kernel command line (last wins), or None."""
        found = None
        for item in self.cmdline:
            k, sep, v = item.partition("=")
            if k == key:
                found = v if sep else ""
        return found

    def with_node(self, node_image_version: str | None) -> ImageFacts:
        return replace(self, node_image_version=node_image_version)

    def with_node_labels(self, labels: Mapping[str, str]) -> ImageFacts:
        """These facts with what the node's AKS labels say of its image (none elsewhere)."""
        return replace(
            self, node_image_version=labels.get(LABEL_NODE_IMAGE) or None,
            os_sku=labels.get(LABEL_OS_SKU) or None,
            os_sku_effective=labels.get(LABEL_OS_SKU_EFFECTIVE) or None,
            os_sku_requested=labels.get(LABEL_OS_SKU_REQUESTED) or None,
        )


def kernel_series(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def parse_key_values(text: str) -> dict[str, str]:
    """Parse os-release style ``KEY=value`` lines (shell quoting, comments)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            words = shlex.split(raw, posix=True)
            value = " ".join(words)
        except ValueError:
            value = raw.strip().strip("\"'")
        out[key] = value
    return out


def parse_facts(text: str) -> ImageFacts:
    """Build ImageFacts from the output of ``FACTS_SCRIPT``."""
    found = split_sections(text, (*FACT_FILES, "uname", "cmdline", "hostname", NOT_RECORDED))
    sections = {name: section.text for name, section in found.items()}
    osr = parse_key_values(sections.get("/etc/os-release", ""))
    release_files = {
        path: sections[path] for path in FACT_FILES[1:] if path in sections
    }
    build = None
    for path in ("/etc/azurelinux-release", "/etc/mariner-release"):
        kv = parse_key_values(release_files.get(path, ""))
        build = build or kv.get("AZURELINUX_BUILD_NUMBER") or kv.get("MARINER_BUILD_NUMBER")
    lsb = parse_key_values(release_files.get("/etc/lsb-release", ""))
    # by line, not the stripped text: a recording that lacks the release leaves line 1 empty
    uname = list(found["uname"].lines) if "uname" in found else []
    kernel = uname[0].strip() if uname else ""
    arch = uname[1].strip() if len(uname) > 1 else ""
    version = osr.get("VERSION", "")
    version_id = osr.get("VERSION_ID", "")
    # VERSION is "3.0.20251021" on Azure Linux; elsewhere (Debian) prose: keep VERSION_ID.
    if not re.fullmatch(r"[0-9][0-9A-Za-z._+~-]*", version):
        version = build or version_id
    return ImageFacts(
        os_id=osr.get("ID", "unknown"),
        version=version,
        version_id=version_id,
        name=osr.get("NAME", ""),
        pretty_name=osr.get("PRETTY_NAME", ""),
        variant_id=osr.get("VARIANT_ID") or None,
        variant=osr.get("VARIANT") or None,
        build_number=build,
        lsb_release=lsb.get("DISTRIB_RELEASE"),
        kernel=kernel,
        arch=arch,
        cmdline=tuple(sections.get("cmdline", "").split()),
        hostname=sections.get("hostname", "").strip(),
        os_release=osr,
        release_files=release_files,
        missing=frozenset(sections.get(NOT_RECORDED, "").split()),
    )
