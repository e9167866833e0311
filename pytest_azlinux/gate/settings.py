"""The target settings of the gate: ``suites.sentinels`` and ``suites.reruns``.

::

    suites:
      sentinels:
        enabled: true          # false: no sentinel on this target's hosts
        kernel: true           # the kernel log (panic, oops, BUG, WARNING, OOM kill, ...)
        units: true            # systemd units newly failed since the run started
        denials: true          # SELinux / AppArmor denials
        allowlist:             # known lines: a regex, and why they are accepted
          - pattern: "EXT4-fs error .* loop7"
            sentinel: kernel   # optional: kernel, units or denials
            hosts: [vm-*]      # optional: host globs
            reason: "scratch disk formatted by the storage suite"
            expires: 2027-01-31
            tracker: https://example.net/OPS-9
      reruns:
        timeouts: false        # also rerun a test whose command timed out (--azl-reruns)
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ..acceptance import Acceptance
from ..settings import SuiteSettings
from .waivers import glob_match

SentinelName = Literal["kernel", "units", "denials"]
SENTINEL_NAMES: tuple[SentinelName, ...] = ("kernel", "units", "denials")


class SentinelAllow(Acceptance):
    """A finding line accepted by a regex (searched in the line), with its acceptance."""

    pattern: str = Field(min_length=1)
    sentinel: SentinelName | None = None
    hosts: list[str] | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def matches(self, sentinel: str, host: str, line: str) -> bool:
        if self.sentinel is not None and self.sentinel != sentinel:
            return False
        if self.hosts is not None and not any(glob_match(h, host) for h in self.hosts):
            return False
        return re.search(self.pattern, line) is not None


class SentinelSettings(SuiteSettings):
    """``suites.sentinels`` of a target."""

    suite: ClassVar[str] = "sentinels"

    enabled: bool = True
    kernel: bool = True
    units: bool = True
    denials: bool = True
    allowlist: list[SentinelAllow] = Field(default_factory=list)
    max_lines: int = Field(default=20, ge=1)  # lines shown per finding in a failure
    timeout: float = Field(default=30.0, gt=0)  # of each sentinel round trip

    def wants(self, sentinel: SentinelName) -> bool:
        return self.enabled and bool(getattr(self, sentinel))


class RerunSettings(SuiteSettings):
    """``suites.reruns`` of a target (the number of reruns is ``--azl-reruns``)."""

    suite: ClassVar[str] = "reruns"

    timeouts: bool = False  # a command timeout may be a real hang: rerun it only when asked
