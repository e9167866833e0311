"""SELinux mode from three places that must agree: runtime, config file, kernel command line.

``parse_mode_readings`` is pure (it takes what ``MODE_SCRIPT`` prints); ``read_mode`` runs
the script on a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..facts import split_sections
from ..host import Host

Mode = Literal["enforcing", "permissive", "disabled"]
MODES: tuple[Mode, ...] = ("enforcing", "permissive", "disabled")
CONFIG_PATH = "/etc/selinux/config"

# Each marker starts on a line of its own: /sys/fs/selinux/enforce and
# /sys/kernel/security/lsm have no trailing newline (a real kernel prints "1" without one).
MODE_SCRIPT = (
    "printf '==> enforce\\n'; cat /sys/fs/selinux/enforce 2>/dev/null; "
    "printf '\\n==> getenforce\\n'; getenforce 2>/dev/null; "
    f"printf '\\n==> config\\n'; cat {CONFIG_PATH} 2>/dev/null; "
    "printf '\\n==> cmdline\\n'; cat /proc/cmdline; "
    "printf '\\n==> lsm\\n'; cat /sys/kernel/security/lsm 2>/dev/null; echo"
)
SECTIONS = ("enforce", "getenforce", "config", "cmdline", "lsm")


@dataclass(frozen=True)
class ModeReadings:
    """What each place says. None: that place says nothing (file absent, option not given)."""

    runtime: Mode
    runtime_source: str
    getenforce: Mode | None
    config: Mode | None
    config_type: str | None
    cmdline: Mode | None
    cmdline_detail: str

    @property
    def configured(self) -> Mode:
        """The mode config file + command line imply for this boot."""
        if self.cmdline == "disabled":
            return "disabled"
        if self.config in (None, "disabled"):
            # no config: no policy is loaded at boot; disabled in the config wins over enforcing=
            return "disabled"
        if self.cmdline is not None:
            return self.cmdline
        return self.config

    def describe(self) -> str:
        config: str = self.config or "absent"
        if self.config and self.config_type:
            config += f" (SELINUXTYPE={self.config_type})"
        return (
            f"runtime={self.runtime} ({self.runtime_source}), "
            f"config={config} ({CONFIG_PATH} SELINUX=), "
            f"cmdline={self.cmdline or 'not set'} ({self.cmdline_detail or 'no selinux options'})"
        )


def parse_config(text: str) -> tuple[Mode | None, str | None]:
    """(SELINUX=, SELINUXTYPE=) of /etc/selinux/config; (None, None) for no setting."""
    mode: Mode | None = None
    policy = None
    for line in text.splitlines():
        m = re.match(r"\s*(SELINUX|SELINUXTYPE)\s*=\s*[\"']?([^\"'#\s]*)", line)
        if not m:
            continue
        if m.group(1) == "SELINUX":
            value = m.group(2).lower()
            mode = value if value in MODES else None
        else:
            policy = m.group(2)
    return mode, policy


def parse_cmdline(tokens: list[str]) -> tuple[Mode | None, str]:
    """The mode the kernel command line forces, and the options that say so."""
    values: dict[str, str] = {}
    for token in tokens:
        key, _, value = token.partition("=")
        if key in ("selinux", "enforcing", "security", "lsm"):
            values[key] = value  # last one wins, as in the kernel
    detail = " ".join(f"{k}={v}" for k, v in values.items())
    if values.get("selinux") == "0":
        return "disabled", detail
    if "security" in values and values["security"] not in ("selinux", ""):
        return "disabled", detail
    if "lsm" in values and "selinux" not in values["lsm"].split(","):
        return "disabled", detail
    if "enforcing" in values:
        return ("enforcing" if values["enforcing"] == "1" else "permissive"), detail
    return None, detail


def parse_mode_readings(text: str) -> ModeReadings:
    s = split_sections(text, SECTIONS)
    enforce = s.get("enforce", "")
    if enforce in ("0", "1"):
        runtime: Mode = "enforcing" if enforce == "1" else "permissive"
        source = f"/sys/fs/selinux/enforce={enforce}"
    else:
        runtime, source = "disabled", "no selinuxfs"
    get = s.get("getenforce", "").strip().lower()
    config, policy = parse_config(s.get("config", ""))
    cmdline, detail = parse_cmdline(s.get("cmdline", "").split())
    return ModeReadings(
        runtime=runtime,
        runtime_source=source,
        getenforce=get if get in MODES else None,
        config=config,
        config_type=policy,
        cmdline=cmdline,
        cmdline_detail=detail,
    )


def mode_problems(readings: ModeReadings, expected: Mode | None, expected_from: str) -> list[str]:
    """Disagreements between the three places and with the expectation (empty: all agree)."""
    problems = []
    if readings.getenforce is not None and readings.getenforce != readings.runtime:
        problems.append(f"getenforce says {readings.getenforce}, selinuxfs says {readings.runtime}")
    if readings.configured != readings.runtime:
        problems.append(
            f"config and cmdline imply {readings.configured} but the running mode is "
            f"{readings.runtime}"
        )
    if expected is not None and readings.runtime != expected:
        problems.append(f"expected {expected} ({expected_from}), running {readings.runtime}")
    return problems


def read_mode(host: Host) -> ModeReadings:
    return parse_mode_readings(host.run(MODE_SCRIPT, sudo=False).stdout)
