"""Which profile applies to a host: named in the targets file, else detected from its facts.

Detection rules (first that applies):

1. AKS node label ``kubernetes.azure.com/node-image-version``:
   ``AKSCBLMariner-*`` -> ``mariner-2.0``; ``AKSAzureLinux-<SKU>-<YYYYMM>.<DD>.<n>`` ->
   ``aks-node-3.0`` from 202511 on, ``aks-node-3.0-pre-202511`` before; a FIPS node (label
   ``kubernetes.azure.com/fips_enabled=true``, a ``fips`` SKU or ``fips=1``) gets the
   ``-fips`` profile.
2. ``ID=mariner`` -> ``mariner-2.0``.
3. ``ID=azurelinux``, ``VERSION_ID=3.0``: ``VARIANT_ID`` osguard-ci / osguard / baremetal;
   else FIPS (``fips=1`` or a fips variant) -> ``azl-3.0-fips`` (``-hwe-fips`` on a 6.12
   kernel); else a 6.12 kernel -> ``azl-3.0-hwe``; else ``azl-3.0``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import ProfileError
from ..facts import ImageFacts
from .loader import ProfileSet
from .model import Profile

NODE_IMAGE_LABEL = "kubernetes.azure.com/node-image-version"
FIPS_LABEL = "kubernetes.azure.com/fips_enabled"
APPARMOR_NODE_IMAGE = 202511  # first AKS node image month with AppArmor (Azure/AKS#5433)
_NODE_IMAGE = re.compile(r"^AKS(?P<os>AzureLinux|CBLMariner)-(?P<sku>[A-Za-z0-9]+)-(?P<ym>\d{6})\.")


def detect_profile_name(facts: ImageFacts, labels: Mapping[str, str]) -> tuple[str, str]:
    """``(profile name, reason)`` from facts and node labels; ProfileError if none fits."""
    fips_cmdline = facts.cmdline_value("fips") == "1"
    node_image = labels.get(NODE_IMAGE_LABEL) or facts.node_image_version
    if node_image:
        m = _NODE_IMAGE.match(node_image)
        if m is None:
            raise ProfileError(
                f"node image version {node_image!r} ({NODE_IMAGE_LABEL}) is not of the form "
                "AKSAzureLinux-<SKU>-<YYYYMM>.<DD>.<n>: name a profile with 'profile:'"
            )
        if m["os"] == "CBLMariner":
            return "mariner-2.0", f"node image {node_image}"
        name = "aks-node-3.0" if int(m["ym"]) >= APPARMOR_NODE_IMAGE else "aks-node-3.0-pre-202511"
        fips = (
            labels.get(FIPS_LABEL, "").lower() == "true"
            or "fips" in m["sku"].lower()
            or fips_cmdline
        )
        return (f"{name}-fips" if fips else name), f"node image {node_image}" + (
            ", FIPS" if fips else ""
        )
    what = f"ID={facts.os_id} VERSION_ID={facts.version_id}"
    if facts.variant_id:
        what += f" VARIANT_ID={facts.variant_id}"
    if facts.os_id == "mariner":
        return "mariner-2.0", f"detected {what}"
    if facts.os_id == "azurelinux" and facts.version_id == "3.0":
        variant = (facts.variant_id or "").lower()
        hwe = facts.kernel_flavour == "hwe"
        if "osguard-ci" in variant:
            return "azl-3.0-osguard-ci", f"detected {what}"
        if "osguard" in variant:
            return "azl-3.0-osguard", f"detected {what}"
        if "baremetal" in variant:
            return "azl-3.0-baremetal", f"detected {what}"
        if fips_cmdline or "fips" in variant:
            why = f"detected {what}, fips=1" if fips_cmdline else f"detected {what}"
            return ("azl-3.0-hwe-fips" if hwe else "azl-3.0-fips"), why + (
                f", kernel {facts.kernel}" if hwe else ""
            )
        if hwe:
            return "azl-3.0-hwe", f"detected {what}, kernel {facts.kernel}"
        return "azl-3.0", f"detected {what}"
    raise ProfileError(
        f"no image profile matches {what} (host {facts.hostname or '?'}): "
        "name one with 'profile:' in the targets file"
    )


def select_profile(
    profiles: ProfileSet,
    facts: ImageFacts,
    named: str | None = None,
    labels: Mapping[str, str] | None = None,
    where: str = "",
) -> Profile:
    """The host's profile, with ``reason`` set: ``named`` (the target's or the host's
    ``profile:``) wins over detection."""
    if named:
        reason = "named in the targets file"
        return profiles.get(named, wanted_by=where).model_copy(update={"reason": reason})
    name, reason = detect_profile_name(facts, labels or {})
    return profiles.get(name, wanted_by=where).model_copy(update={"reason": reason})
