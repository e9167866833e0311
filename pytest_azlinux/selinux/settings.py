"""The target's ``suites.selinux`` settings, and the mode a host is expected to run in."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import TargetsError
from ..host import Host
from .allowlist import AllowEntry, parse_allowlist
from .collect import DEFAULT_AUDIT_LOG, Source
from .containers import DEFAULT_ALLOWED
from .mode import Mode

WatchMode = Literal["fail", "warn", "ignore"]
WATCH_MODES: tuple[WatchMode, ...] = ("fail", "warn", "ignore")


class SelinuxSettings(BaseModel):
    """``suites.selinux`` of a target (every key optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    @field_validator("allowlist", mode="before")
    @classmethod
    def _allowlist(cls, value: Any) -> Any:
        # validated separately so an error names the entry index
        return parse_allowlist(value, "allowlist")


def parse_settings(raw: dict[str, Any], target: str) -> SelinuxSettings:
    where = f"target {target!r}: suites.selinux"
    try:
        return SelinuxSettings.model_validate(raw)
    except TargetsError as exc:
        raise TargetsError(f"{where}.{exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(settings)"
        msg = err["msg"]
        ctx_error = err.get("ctx", {}).get("error")
        if isinstance(ctx_error, TargetsError):
            msg = str(ctx_error)
        raise TargetsError(f"{where}: field '{field}': {msg}") from None


def expected_mode(host: Host, settings: SelinuxSettings, target: str) -> tuple[Mode | None, str]:
    """(mode, where the expectation comes from): the target setting, else the image profile."""
    if settings.expect_mode is not None:
        return settings.expect_mode, f"target {target} suites.selinux.expect_mode"
    try:
        from ..profiles import ProfileError, dirs_from_env, load_profiles, select_profile
    except ImportError:  # profiles not installed with this build
        return None, "no image profiles available"
    try:
        selected: Any = select_profile(
            load_profiles(dirs_from_env()), host.facts, named=host.spec.profile,
            labels=host.spec.labels, where=f"target {target} host {host.name}",
        )
    except ProfileError as exc:
        if host.spec.profile:  # a named profile that does not resolve is a config error
            raise
        return None, f"no image profile: {exc}"
    # the profiles API returns the Profile (with .reason) or a Selection(.profile, .reason)
    profile = getattr(selected, "profile", selected)
    reason = getattr(selected, "reason", "") or "detected"
    mode: Mode = profile.selinux
    return mode, f"profile {profile.name}, {reason}: {profile.source('selinux')}"
