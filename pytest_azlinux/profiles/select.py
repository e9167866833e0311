"""Which profile applies to a host: named in the targets file, else detected from its facts.

Detection rules (first that applies):

1. AKS node label ``kubernetes.azure.com/node-image-version`` (``<OS>-[<SKU>-]<YYYYMM>.<DD>.<n>``,
   OS and SKU as the AKS Node Image Versions API spells them):
   ``AKSCBLMariner-*`` and ``AKSAzureLinux-V2*`` -> ``mariner-2.0`` (Azure Linux 2.0 is
   CBL-Mariner 2.0); ``AKSAzureContainerLinux-*`` or an ``AKSAzureLinux-acl*`` SKU ->
   ``aks-node-acl``; an ``AKSAzureLinux-OSGuard*`` SKU -> ``aks-node-osguard``; any other
   ``AKSAzureLinux-<SKU>`` -> ``aks-node-3.0`` from 202511 on, ``aks-node-3.0-pre-202511``
   before. A FIPS node (label ``kubernetes.azure.com/fips_enabled=true``, a ``fips`` SKU or
   ``fips=1``) gets the ``-fips`` profile, except on OS Guard, which is FIPS by itself.
2. ``ID=mariner`` -> ``mariner-2.0``.
3. Azure Container Linux: ``VARIANT_ID=azurecontainerlinux`` (shipped images say
   ``ID=azurelinux``, so ``ID`` alone does not tell ACL from Azure Linux 3.0), or the IDs of
   earlier ACL builds, ``ID=azurecontainerlinux`` and ``ID=acl`` -> ``acl-3.0``; FIPS
   (``fips=1`` or a fips variant) -> ``acl-3.0-fips``.
4. ``ID=azurelinux``, ``VERSION_ID=4.0`` -> ``azl-4.0``; FIPS -> ``azl-4.0-fips``.
5. ``ID=azurelinux``, ``VERSION_ID=3.0``: ``VARIANT_ID`` osguard-ci / osguard / baremetal;
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
# e.g. AKSAzureLinux-V3gen2-202511.07.0, AKSAzureLinux-OSGuardV3gen2fipsTL-202512.18.0
# (karpenter-provider-azure's Node Image Versions API snapshot), AKSAzureLinux-aclgen2TL-...
# (AgentBaker's image definition aclgen2TL), AKSAzureContainerLinux-202606.01.0 (AKS docs).
_NODE_IMAGE = re.compile(
    r"^AKS(?P<os>AzureContainerLinux|AzureLinux|CBLMariner)-(?:(?P<sku>[A-Za-z0-9]+)-)?"
    r"(?P<ym>\d{6})\.\d{2}\.\d+"
)
ACL_VARIANT = "azurecontainerlinux"
ACL_EARLIER_IDS = ("azurecontainerlinux", "acl")  # IDs of ACL builds before ID=azurelinux


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
        fips = (
            labels.get(FIPS_LABEL, "").lower() == "true"
            or "fips" in (m["sku"] or "").lower()
            or fips_cmdline
        )
        return _node_profile(m["os"], m["sku"] or "", int(m["ym"]), node_image, fips)
    what = f"ID={facts.os_id} VERSION_ID={facts.version_id}"
    if facts.variant_id:
        what += f" VARIANT_ID={facts.variant_id}"
    if facts.os_id == "mariner":
        return "mariner-2.0", f"detected {what}"
    variant = (facts.variant_id or "").lower()
    fips = fips_cmdline or "fips" in variant
    why = f"detected {what}" + (", fips=1" if fips_cmdline else "")
    if variant == ACL_VARIANT or facts.os_id in ACL_EARLIER_IDS:
        return ("acl-3.0-fips" if fips else "acl-3.0"), why
    if facts.os_id == "azurelinux" and facts.version_id == "4.0":
        return ("azl-4.0-fips" if fips else "azl-4.0"), why
    if facts.os_id == "azurelinux" and facts.version_id == "3.0":
        hwe = facts.kernel_flavour == "hwe"
        if "osguard-ci" in variant:
            return "azl-3.0-osguard-ci", f"detected {what}"
        if "osguard" in variant:
            return "azl-3.0-osguard", f"detected {what}"
        if "baremetal" in variant:
            return "azl-3.0-baremetal", f"detected {what}"
        if fips:
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


def _node_profile(os: str, sku: str, month: int, node_image: str, fips: bool) -> tuple[str, str]:
    """The profile of an AKS node from its node image version's OS, SKU and month."""
    why = f"node image {node_image}" + (", FIPS" if fips else "")
    lower = sku.lower()
    if os == "CBLMariner" or (os == "AzureLinux" and lower.startswith("v2")):
        return "mariner-2.0", f"node image {node_image}"
    if os == "AzureContainerLinux" or lower.startswith("acl"):
        return ("aks-node-acl-fips" if fips else "aks-node-acl"), why
    if lower.startswith("osguard"):
        return "aks-node-osguard", f"node image {node_image}"  # FIPS by itself
    name = "aks-node-3.0" if month >= APPARMOR_NODE_IMAGE else "aks-node-3.0-pre-202511"
    return (f"{name}-fips" if fips else name), why


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
