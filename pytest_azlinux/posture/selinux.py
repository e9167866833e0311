"""SELinux mode in the image suite: the SELinux owner's rule (``selinux.mode.mode_problems``)
with the profile's expectation, as findings that cite the profile's source."""

from __future__ import annotations

from ..profiles.model import Profile
from ..selinux.mode import Aspect, SelinuxState, mode_problems
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
