"""SELinux mode: runtime vs the profile, and runtime vs config file and kernel command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..facts import parse_key_values
from ..profiles.model import Profile
from ..selinux.mode import parse_cmdline
from .findings import Finding

MODES = ("disabled", "permissive", "enforcing")


@dataclass(frozen=True)
class SELinuxState:
    runtime: str  # disabled / permissive / enforcing
    runtime_from: str  # where the runtime mode was read
    config: str | None  # SELINUX= of /etc/selinux/config, None without the file
    cmdline: tuple[str, ...]  # selinux= / enforcing= / security= / lsm= of the command line

    @property
    def implied(self) -> str:
        """The mode the boot configuration (command line over config file) asks for."""
        forced, _ = parse_cmdline(list(self.cmdline))  # selinux=, enforcing=, security=, lsm=
        if forced == "disabled" or self.config == "disabled":
            return "disabled"
        return forced or self.config or "disabled"  # no config: no policy is loaded at boot

    def describe(self) -> str:
        cmd = " ".join(self.cmdline) or "no selinux=/enforcing="
        config = f"SELINUX={self.config}" if self.config else "no /etc/selinux/config"
        return f"runtime {self.runtime} ({self.runtime_from}), {config}, cmdline: {cmd}"


def runtime_mode(enforce: str | None, getenforce: str | None) -> tuple[str, str]:
    """From ``/sys/fs/selinux/enforce`` (1/0), else ``getenforce``, else disabled."""
    if enforce is not None and enforce.strip() in ("0", "1"):
        mode = "enforcing" if enforce.strip() == "1" else "permissive"
        return mode, "/sys/fs/selinux/enforce"
    if getenforce is not None and getenforce.strip().lower() in MODES:
        return getenforce.strip().lower(), "getenforce"
    return "disabled", "no selinuxfs"


def selinux_state(
    enforce: str | None, getenforce: str | None, config_text: str | None, cmdline: Sequence[str]
) -> SELinuxState:
    mode, origin = runtime_mode(enforce, getenforce)
    config = None
    if config_text is not None:
        config = parse_key_values(config_text).get("SELINUX", "").lower() or None
    items = tuple(w for w in cmdline
                  if w.split("=", 1)[0] in ("selinux", "enforcing", "security", "lsm"))
    return SELinuxState(mode, origin, config, items)


def check_selinux_mode(state: SELinuxState, profile: Profile) -> list[Finding]:
    if state.runtime == profile.selinux:
        return []
    return [
        Finding("selinux.runtime", profile.selinux, state.describe(), profile.source("selinux"))
    ]


def check_selinux_consistent(state: SELinuxState, profile: Profile) -> list[Finding]:
    if state.implied == state.runtime:
        return []
    return [
        Finding(
            "selinux.consistency",
            f"config file and command line agree with runtime {state.runtime}",
            f"they ask for {state.implied}: {state.describe()}",
            profile.source("selinux"),
        )
    ]
