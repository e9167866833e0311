"""SELinux mode: runtime vs the profile, and runtime vs config file and kernel command line.

The readings are judged by the SELinux suite's rules (``pytest_azlinux.selinux.mode``): one
runtime reading, one config parser, one rule for the mode the boot configuration implies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..profiles.model import Profile
from ..selinux.mode import Mode, implied_mode, parse_cmdline, parse_config, runtime_mode
from .findings import Finding

SELINUX_OPTIONS = ("selinux", "enforcing", "security", "lsm")


@dataclass(frozen=True)
class SELinuxState:
    runtime: Mode
    runtime_from: str  # where the runtime mode was read
    config: Mode | None  # SELINUX= of /etc/selinux/config, None without the file or setting
    cmdline: tuple[str, ...]  # selinux= / enforcing= / security= / lsm= of the command line

    @property
    def implied(self) -> Mode:
        """The mode the boot configuration (command line over config file) asks for."""
        forced, _ = parse_cmdline(list(self.cmdline))
        return implied_mode(self.config, forced)

    def describe(self) -> str:
        cmd = " ".join(self.cmdline) or "no selinux=/enforcing="
        config = f"SELINUX={self.config}" if self.config else "no /etc/selinux/config setting"
        return f"runtime {self.runtime} ({self.runtime_from}), {config}, cmdline: {cmd}"


def selinux_state(
    enforce: str | None, getenforce: str | None, config_text: str | None, cmdline: Sequence[str]
) -> SELinuxState:
    mode, origin = runtime_mode(enforce, getenforce)
    config = parse_config(config_text)[0] if config_text is not None else None
    items = tuple(w for w in cmdline if w.split("=", 1)[0] in SELINUX_OPTIONS)
    return SELinuxState(mode, origin.split("=")[0], config, items)


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
