"""SELinux mode, the one owner: one state type, one read, one rule (image and SELinux suites).

Three places say what the mode is and must agree: the running kernel (selinuxfs), the config
file and the kernel command line. ``read_mode`` reads them through the host's reads
(``MODE_READS``, batched with the image suite's other reads; the command line comes with the
host's facts); ``selinux_state`` builds the ``SelinuxState`` from that text (pure), and
``mode_problems`` is the rule both suites judge it by.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..host import Host
from ..reads import Read

Mode = Literal["enforcing", "permissive", "disabled"]
MODES: tuple[Mode, ...] = ("enforcing", "permissive", "disabled")
CONFIG_PATH = "/etc/selinux/config"
ENFORCE_PATH = "/sys/fs/selinux/enforce"
# /sys/fs/selinux/enforce, getenforce (where selinuxfs cannot be read), the config file
MODE_READS = (
    Read.of("cat -- %s 2>/dev/null", ENFORCE_PATH),
    Read("getenforce"),
    Read.of("cat -- %s 2>/dev/null", CONFIG_PATH),
)
Aspect = Literal["getenforce", "consistency", "expected"]


@dataclass(frozen=True)
class SelinuxState:
    """What each place says. None: that place says nothing (file absent, option not given)."""

    runtime: Mode
    runtime_source: str  # where the running mode was read: "/sys/fs/selinux/enforce=1"...
    getenforce: Mode | None
    config: Mode | None  # SELINUX= of /etc/selinux/config
    config_type: str | None  # SELINUXTYPE=
    cmdline: Mode | None  # the mode the kernel command line forces
    cmdline_detail: str  # the selinux=/enforcing=/security=/lsm= options that say so

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


@dataclass(frozen=True)
class ModeProblem:
    """One disagreement: between the places (``getenforce``, ``consistency``) or with the
    expected mode (``expected``)."""

    aspect: Aspect
    text: str

    def __str__(self) -> str:
        return self.text


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


def selinux_state(
    enforce: str | None, getenforce: str | None, config_text: str | None, cmdline: Sequence[str]
) -> SelinuxState:
    """The mode from what the places printed (None: not readable) and the command line."""
    get = (getenforce or "").strip().lower()
    runtime, source = runtime_mode(enforce, get)
    config, policy = parse_config(config_text or "")
    forced, detail = parse_cmdline(list(cmdline))
    return SelinuxState(
        runtime=runtime,
        runtime_source=source,
        getenforce=get if get in MODES else None,
        config=config,
        config_type=policy,
        cmdline=forced,
        cmdline_detail=detail,
    )


def mode_problems(
    mode: SelinuxState, expected: Mode | None, expected_from: str
) -> list[ModeProblem]:
    """The one rule: disagreements between the three places and with the expectation
    (empty: all agree)."""
    problems = []
    if mode.getenforce is not None and mode.getenforce != mode.runtime:
        problems.append(ModeProblem(
            "getenforce", f"getenforce says {mode.getenforce}, selinuxfs says {mode.runtime}"))
    if mode.configured != mode.runtime:
        problems.append(ModeProblem(
            "consistency",
            f"config and cmdline imply {mode.configured} but the running mode is {mode.runtime}",
        ))
    if expected is not None and mode.runtime != expected:
        problems.append(ModeProblem(
            "expected", f"expected {expected} ({expected_from}), running {mode.runtime}"))
    return problems


def read_mode(host: Host) -> SelinuxState:
    """The host's SELinux mode (one batch, kept for the run with the host's other reads)."""
    enforce, getenforce, config = host.reads.get_all(MODE_READS)
    return selinux_state(
        enforce.stdout if enforce.rc == 0 else None,
        getenforce.stdout if getenforce.rc == 0 else None,
        config.stdout if config.rc == 0 else None,
        host.facts.cmdline,
    )
