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
        return implied_mode(self.config, self.cmdline)

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


def implied_mode(config: Mode | None, cmdline: Mode | None) -> Mode:
    """The one rule for what the boot configuration asks for (image and SELinux suites).

    As libselinux's ``selinux_init_load_policy`` decides at boot: a command line that
    disables SELinux (``selinux=0``, another ``security=``, an ``lsm=`` without selinux) or
    ``SELINUX=disabled`` in the config file disables it; otherwise ``enforcing=`` on the
    command line wins over the config file; with neither, nothing asks for SELinux.
    A config file that is absent does not disable SELinux by itself: with ``enforcing=`` on
    the command line libselinux still loads the default policy in that mode.
    """
    if cmdline == "disabled" or config == "disabled":
        return "disabled"
    if cmdline is not None:
        return cmdline
    return config or "disabled"


def runtime_mode(enforce: str | None, getenforce: str | None) -> tuple[Mode, str]:
    """(mode, where it was read): ``/sys/fs/selinux/enforce`` (1/0), else ``getenforce``,
    else disabled (no selinuxfs)."""
    value = (enforce or "").strip()
    if value in ("0", "1"):
        return ("enforcing" if value == "1" else "permissive"), f"/sys/fs/selinux/enforce={value}"
    word = (getenforce or "").strip().lower()
    if word == "enforcing":  # getenforce reads selinuxfs too: a fallback for the same thing
        return "enforcing", "getenforce"
    if word == "permissive":
        return "permissive", "getenforce"
    return "disabled", "no selinuxfs"


def parse_mode_readings(text: str) -> ModeReadings:
    s = split_sections(text, SECTIONS)
    get = s.get("getenforce", "").strip().lower()
    runtime, source = runtime_mode(s.get("enforce", ""), get)
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
