"""Minimum package versions of a profile, judged on the host's package inventory.

The inventory (``packages/inventory.py``) is read once per host from whatever the image
keeps (rpm database, SPDX manifests, dpkg); versions compare as rpm compares them
(``packages/versions.py``). Each finding says where the package list came from.
"""

from __future__ import annotations

from ..packages.inventory import Inventory, Package
from ..packages.versions import version_at_least
from ..profiles.model import Profile
from .findings import Finding


def _shown(p: Package, inventory: Inventory, several: bool) -> str:
    text = p.evr + (f".{p.arch}" if several and p.arch else "")
    return text + (f" in {p.origin}" if inventory.source == "spdx" else "")


def check_packages(inventory: Inventory, profile: Profile) -> list[Finding]:
    """A finding per required package that is not installed and per installed copy of a
    package below the profile's minimum (every copy counts: multilib, base and sysext)."""
    out = []
    for rule in profile.packages:
        copies = inventory.get(rule.name)
        if not copies:
            if rule.required:
                out.append(
                    Finding(
                        f"packages.{rule.name}",
                        f"{rule.name} installed" + (f" (>= {rule.min})" if rule.min else ""),
                        f"not installed ({inventory.where})",
                        rule.source,
                    )
                )
            continue
        if rule.min is None:
            continue
        old = [p for p in copies if not version_at_least(p.evr, rule.min)]
        if old:
            several = len(copies) > 1
            shown = ", ".join(_shown(p, inventory, several) for p in old)
            out.append(
                Finding(
                    f"packages.{rule.name}",
                    f"{rule.name} >= {rule.min}",
                    f"{shown} ({inventory.where})",
                    rule.source,
                )
            )
    return out
