"""``suites.hardening`` of a target: the level to run and controls that do not apply there."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ..settings import SuiteSettings
from .model import ID_PATTERN


class HardeningSettings(SuiteSettings):
    """``level``: 1 runs level-1 controls, 2 runs both levels (``--azl-hardening-level``
    overrides it). ``not_applicable``: control id -> reason, for what the target knowingly
    does differently (a router, a build host); the reason shows in the skip. ``skip``: the
    reason the whole baseline says nothing about this target (every control skips with it)."""

    suite: ClassVar[str] = "hardening"

    level: Literal[1, 2] = 1
    not_applicable: dict[str, str] = Field(default_factory=dict)
    skip: str | None = None

    @field_validator("not_applicable")
    @classmethod
    def _known_ids(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        from .loader import load_controls

        controls = load_controls()
        for control_id, reason in value.items():
            if not re.fullmatch(ID_PATTERN, control_id) or control_id not in controls:
                raise ValueError(f"unknown control id {control_id!r}")
            if not reason.strip():
                raise ValueError(f"{control_id}: give the reason it does not apply")
        return value
