"""SELinux mode in the image suite: the SELinux owner's rule (``selinux.mode.mode_problems``)
with the profile's expectation, as findings that cite the profile's source."""

from __future__ import annotations

from ..profiles.model import Profile
from ..selinux.mode import CONFIG_PATH, Aspect, SelinuxState, mode_problems
from .findings import Finding


def _problems(mode: SelinuxState, profile: Profile, aspect: Aspect) -> bool:
    found = mode_problems(mode, profile.selinux, f"profile {profile.name}")
    return any(p.aspect == aspect for p in found)


def check_selinux_mode(mode: SelinuxState, profile: Profile) -> list[Finding]:
    """The running mode is the one the profile expects."""
    if not _problems(mode, profile, "expected"):
        return []
    return [
        Finding("selinux.runtime", profile.selinux, mode.describe(), profile.source("selinux"))
    ]


def check_selinux_consistent(mode: SelinuxState, profile: Profile) -> list[Finding]:
    """Config file and kernel command line ask for the mode that runs."""
    if not _problems(mode, profile, "consistency"):
        return []
    return [
        Finding(
            "selinux.consistency",
            f"config file and command line agree with runtime {mode.runtime}",
            f"they ask for {mode.configured}: {mode.describe()}",
            profile.source("selinux"),
        )
    ]


def check_selinux_policy(mode: SelinuxState, profile: Profile) -> list[Finding]:
    """The policy is the one the profile names.

    The kernel keeps no policy name: what ``sestatus`` prints as "Loaded policy name" is
    libselinux's ``selinux_getpolicytype``, i.e. ``SELINUXTYPE=`` of /etc/selinux/config,
    the policy the boot loaded. This reads the same line (``SelinuxState.config_type``).
    """
    want = profile.selinux_policy
    src = profile.source("selinux_policy")
    if want is None:
        return []
    if mode.runtime == "disabled":
        return [Finding("selinux.policy", f"policy {want} loaded",
                        f"SELinux disabled, no policy loaded ({mode.describe()})", src)]
    if mode.config_type != want:
        found = mode.config_type or f"no SELINUXTYPE= ({CONFIG_PATH} absent or without it)"
        return [Finding("selinux.policy", f"SELINUXTYPE={want} ({CONFIG_PATH})", found, src)]
    return []
