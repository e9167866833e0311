"""The target's ``suites.selinux`` settings, and the mode a host is expected to run in."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import Field

from ..profiles.model import Profile
from ..settings import SuiteSettings
from .allowlist import AllowEntry
from .collect import DEFAULT_AUDIT_LOG, Source
from .containers import DEFAULT_ALLOWED
from .mode import Mode

WatchMode = Literal["fail", "warn", "ignore"]
WATCH_MODES: tuple[WatchMode, ...] = ("fail", "warn", "ignore")


class SelinuxSettings(SuiteSettings):
    """``suites.selinux`` of a target (every key optional)."""

    suite: ClassVar[str] = "selinux"

    expect_mode: Mode | None = None
    allowlist: list[AllowEntry] = Field(default_factory=list)
    window: Literal["boot", "run", "all"] = "boot"
    source: Source | Literal["auto"] = "auto"
    audit_log: str = DEFAULT_AUDIT_LOG
    check_denials: Literal["auto", "always", "never"] = "auto"
    watch: WatchMode | None = None
    watch_settle: float = Field(default=0.2, ge=0, le=30)
    container_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED))
    top: int = Field(default=10, ge=1)
    timeout: float = Field(default=120.0, gt=0)


def expected_mode(
    settings: SelinuxSettings, target: str, profile: Callable[[], Profile]
) -> tuple[Mode, str]:
    """(mode, where the expectation comes from): the target setting, else the host's image
    profile, as the ``azl_profile`` fixture selects it (``profile`` is only called then)."""
    if settings.expect_mode is not None:
        return settings.expect_mode, f"target {target} suites.selinux.expect_mode"
    selected = profile()
    return selected.selinux, f"profile {selected.name}, {selected.reason}: " + (
        selected.source("selinux"))
