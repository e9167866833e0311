"""How an image file's first boot is provisioned: cloud-init (a NoCloud seed) or Ignition
(a config through qemu's fw_cfg), and who logs in.

``provisioning: auto`` (the default) decides from what the disk says before it boots
(``claims.read_disk``), first match wins:

1. os-release names an Ignition distribution: ``VARIANT_ID=azurecontainerlinux`` (Azure
   Container Linux), ``ID=flatcar``, ``VARIANT_ID=coreos`` (Fedora/RHEL CoreOS);
2. a partition (GPT name) or ext file system labelled ``ignition``, or Flatcar's layout
   (GPT partitions ``USR-A`` and ``OEM``, which ACL keeps);
3. the image's own declaration: its root carries Ignition (``/usr/bin/ignition`` or
   dracut's ``30ignition`` module) and not cloud-init;
4. otherwise cloud-init, as before (Azure Linux images run it).

The explicit ``provisioning:`` always wins. The login user is ``user:`` if given, else
``core`` with Ignition (ACL, Flatcar and CoreOS provision ``core``), ``azureuser`` with
cloud-init (as Azure provisions it).
"""

from __future__ import annotations

from dataclasses import dataclass

from .claims import DiskFacts
from .seed import SEED_USER

IGNITION_USER = "core"
IGNITION_DISTROS = (  # (os-release key, value, what it is)
    ("VARIANT_ID", "azurecontainerlinux", "Azure Container Linux"),
    ("ID", "flatcar", "Flatcar Container Linux"),
    ("VARIANT_ID", "coreos", "Fedora/RHEL CoreOS"),
)
FLATCAR_LAYOUT = ("USR-A", "OEM")


@dataclass(frozen=True)
class Provisioning:
    """How the instances of an image target are provisioned, and why."""

    how: str  # "cloud-init" or "ignition"
    user: str  # the login user
    why: str  # for the report: "given", or what in the image decided it


def detect(facts: DiskFacts) -> tuple[str, str]:
    """("ignition" or "cloud-init", why) from what the disk says."""
    release = facts.os_release
    for key, value, name in IGNITION_DISTROS:
        if release.get(key, "").lower() == value:
            return "ignition", f"os-release {key}={value} ({name})"
    for label in facts.labels:
        if label.lower() == "ignition":
            return "ignition", f"a partition labelled {label!r}"
    if all(part in facts.labels for part in FLATCAR_LAYOUT):
        return "ignition", f"Flatcar's partition layout ({', '.join(FLATCAR_LAYOUT)})"
    if "ignition" in facts.provisioners and "cloud-init" not in facts.provisioners:
        return "ignition", "the image carries Ignition and not cloud-init"
    if facts.skipped and not facts.os_release:
        return "cloud-init", f"the default (the disk was not read: {facts.skipped})"
    return "cloud-init", "the default (nothing in the image names Ignition)"


def decide(given: str, user: str | None, facts: DiskFacts) -> Provisioning:
    """The target's ``provisioning`` and ``user`` fields applied to what the disk says."""
    if given == "auto":
        how, why = detect(facts)
    else:
        how, why = given, "given"
    default_user = IGNITION_USER if how == "ignition" else SEED_USER
    return Provisioning(how, user or default_user, why)
