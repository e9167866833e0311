"""Linux security modules: the active list, and AppArmor's state vs the profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..profiles.model import Profile
from .findings import Finding

# Userspace packages that make AppArmor "installed" (Azure Linux: apparmor-parser; Debian:
# apparmor). Libraries (libapparmor) are left out: other packages pull them in.
APPARMOR_PACKAGES = ("apparmor-parser", "apparmor")


def parse_lsm(text: str) -> list[str]:
    """``/sys/kernel/security/lsm``: ``lockdown,capability,landlock,...``."""
    return [x for x in text.strip().split(",") if x]


def check_lsm(active: list[str], profile: Profile) -> list[Finding]:
    out = []
    shown = ",".join(active) or "(empty)"
    missing = [m for m in profile.lsm_include if m not in active]
    if missing:
        out.append(
            Finding(
                "lsm_include",
                f"active LSMs include {','.join(profile.lsm_include)}",
                f"{shown} (missing {','.join(missing)})",
                profile.source("lsm_include"),
            )
        )
    extra = [m for m in profile.lsm_exclude if m in active]
    if extra:
        out.append(
            Finding(
                "lsm_exclude",
                f"active LSMs without {','.join(profile.lsm_exclude)}",
                f"{shown} (has {','.join(extra)})",
                profile.source("lsm_exclude"),
            )
        )
    return out


@dataclass(frozen=True)
class AppArmorEvidence:
    """What a host shows of AppArmor (None = could not be read there)."""

    module_enabled: str | None = None  # /sys/module/apparmor/parameters/enabled: Y / N
    lsm_active: bool | None = None  # listed in /sys/kernel/security/lsm
    service_active: str | None = None  # systemctl is-active apparmor.service
    service_enabled: str | None = None  # systemctl is-enabled apparmor.service
    profiles_loaded: int | None = None  # lines of <securityfs>/apparmor/profiles
    packages: Mapping[str, str] = field(default_factory=dict)  # installed name -> version
    package_source: str = ""  # where the package list came from (``Inventory.where``)

    def artifacts(self) -> list[str]:
        """Every sign of AppArmor, as text for a message."""
        out = [f"package {n} {v}" for n, v in sorted(self.packages.items())]
        if self.module_enabled == "Y":
            out.append("/sys/module/apparmor/parameters/enabled=Y")
        if self.lsm_active:
            out.append("apparmor in /sys/kernel/security/lsm")
        if self.service_active == "active":
            out.append("apparmor.service active")
        if self.service_enabled == "enabled":
            out.append("apparmor.service enabled")
        if self.profiles_loaded:
            out.append(f"{self.profiles_loaded} AppArmor profiles loaded")
        return out

    @property
    def state(self) -> str:
        if self.module_enabled == "Y" and self.lsm_active:
            return "enabled"
        return "installed" if self.packages else "absent"


def check_apparmor(ev: AppArmorEvidence, profile: Profile) -> list[Finding]:
    src = profile.source("apparmor")
    artifacts = ev.artifacts()
    found = "; ".join(artifacts) or "no AppArmor package, module or service"
    if profile.apparmor == "absent":
        if not artifacts:
            return []
        return [
            Finding(
                "apparmor",
                "absent",
                found,
                src,
                summary=f"AppArmor artifacts present; not part of profile {profile.name}",
            )
        ]
    listed = f" (not in the {ev.package_source})" if ev.package_source else ""
    missing = [] if ev.packages else [f"package {' or '.join(APPARMOR_PACKAGES)}{listed}"]
    if profile.apparmor == "enabled":
        if ev.module_enabled != "Y":
            missing.append(f"/sys/module/apparmor/parameters/enabled=Y (found {ev.module_enabled})")
        if not ev.lsm_active:
            missing.append("apparmor in /sys/kernel/security/lsm")
        if ev.service_active is not None and ev.service_active != "active":
            missing.append(f"apparmor.service active (found {ev.service_active})")
    if not missing:
        return []
    return [
        Finding(
            "apparmor",
            profile.apparmor,
            found,
            src,
            summary=f"AppArmor not {profile.apparmor}; profile {profile.name} expects it: "
            f"missing {', '.join(missing)}",
        )
    ]
