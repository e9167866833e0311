"""Identity: os-release, the release file and lsb-release agree and match the profile."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..facts import ImageFacts, parse_key_values
from ..profiles.model import Profile
from .findings import Finding

IDENTITY_SOURCE = (
    "azure-linux.md § Identity files: os-release VERSION=3.0.YYYYMMDD, /etc/azurelinux-release "
    "AZURELINUX_BUILD_NUMBER and /etc/lsb-release DISTRIB_RELEASE carry the same build"
)
# Release file (and its build-number key) per distribution, and whether lsb-release ships.
RELEASE_FILES = {
    "azurelinux": ("/etc/azurelinux-release", "AZURELINUX_BUILD_NUMBER", True),
    "mariner": ("/etc/mariner-release", "MARINER_BUILD_NUMBER", False),
}


def check_profile_identity(facts: ImageFacts, profile: Profile) -> list[Finding]:
    """ID and VERSION as the profile expects."""
    out = []
    if facts.os_id != profile.os_id:
        out.append(
            Finding("os_id", profile.os_id, facts.os_id or "(no ID)", profile.source("os_id"))
        )
    version = facts.os_release.get("VERSION", "")
    if not re.search(profile.version_pattern, version):
        out.append(
            Finding(
                "version",
                f"VERSION matching {profile.version_pattern}",
                repr(version),
                profile.source("version"),
            )
        )
    return out


def check_release_files_agree(facts: ImageFacts) -> list[Finding]:
    """os-release, the distribution's release file and lsb-release name one build."""
    spec = RELEASE_FILES.get(facts.os_id)
    if spec is None:
        return [
            Finding(
                "identity.os_id",
                "ID=azurelinux or ID=mariner",
                f"ID={facts.os_id}",
                IDENTITY_SOURCE,
            )
        ]
    path, key, lsb_expected = spec
    version = facts.os_release.get("VERSION", "")
    out = []
    if path not in facts.release_files:
        out.append(Finding(f"identity.{path}", f"{path} present", "missing", IDENTITY_SOURCE))
    else:
        build = parse_key_values(facts.release_files[path]).get(key)
        if build != version:
            out.append(
                Finding(
                    f"identity.{path}",
                    f"{key}={version} (os-release VERSION)",
                    f"{key}={build}" if build else f"no {key}",
                    IDENTITY_SOURCE,
                )
            )
    lsb_text = facts.release_files.get("/etc/lsb-release")
    if lsb_text is None:
        if lsb_expected:
            out.append(
                Finding(
                    "identity./etc/lsb-release",
                    "/etc/lsb-release present",
                    "missing",
                    IDENTITY_SOURCE,
                )
            )
        return out
    lsb = parse_key_values(lsb_text)
    if lsb.get("DISTRIB_RELEASE") != version:
        out.append(
            Finding(
                "identity./etc/lsb-release",
                f"DISTRIB_RELEASE={version} (os-release VERSION)",
                f"DISTRIB_RELEASE={lsb.get('DISTRIB_RELEASE')}",
                IDENTITY_SOURCE,
            )
        )
    if lsb.get("DISTRIB_ID", "").lower() != facts.os_id.lower():
        out.append(
            Finding(
                "identity./etc/lsb-release",
                f"DISTRIB_ID={facts.os_id} (os-release ID)",
                f"DISTRIB_ID={lsb.get('DISTRIB_ID')}",
                IDENTITY_SOURCE,
            )
        )
    return out


def check_expected_version(facts: ImageFacts, expected: str) -> list[Finding]:
    """The image version the target expects (``expect.image_version``)."""
    if facts.version == expected:
        return []
    return [
        Finding(
            "image_version",
            expected,
            facts.version or "(none)",
            "the target's expect.image_version in the targets file",
        )
    ]


def _groups(values: Mapping[str, str]) -> tuple[int, str]:
    """How many distinct values, and ``value: host, host; value: host`` sorted by value."""
    groups: dict[str, list[str]] = {}
    for host, value in values.items():
        groups.setdefault(value, []).append(host)
    found = "; ".join(f"{value}: {', '.join(sorted(hosts))}"
                      for value, hosts in sorted(groups.items()))
    return len(groups), found


_MIXED_SOURCE = ("the target's expect.allow_mixed_images is false (set it to true for a mixed "
                 "fleet)")


def check_one_image(images: Mapping[str, str]) -> list[Finding]:
    """All hosts of a target run one image: ``{host: image key}``."""
    count, found = _groups(images)
    if count <= 1:
        return []
    return [Finding("images", "one image on every host", f"{count} images ({found})",
                    _MIXED_SOURCE)]


def check_one_node_image(node_images: Mapping[str, str]) -> list[Finding]:
    """All AKS nodes of a target run one node image: ``{node: node image version}`` (the
    ``kubernetes.azure.com/node-image-version`` label). A pool half upgraded runs two node
    images even where their OS images agree (a node image also carries the kubelet,
    containerd and the cached container images), so it is judged on its own."""
    count, found = _groups(node_images)
    if count <= 1:
        return []
    return [Finding("node_images", "one node image version on every node",
                    f"{count} node image versions ({found})", _MIXED_SOURCE)]
