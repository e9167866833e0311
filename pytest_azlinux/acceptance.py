"""Accepting a known deviation: one set of fields for allowlist entries and waivers.

A deviation is accepted for a reason, optionally until a date, with a tracker and an owner::

    reason: "OPS-123: legacy auth module"   # required
    expires: 2027-01-31                     # ISO date; from that day on the entry no longer applies
    tracker: https://example.net/OPS-123
    owner: platform-team

``Acceptance`` is the pydantic base every allowlist entry (and the waivers file) builds on:
subclasses add what they match. An entry applies while ``active(today)``; an expired one
does not apply, so the deviation it covered counts again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Acceptance(BaseModel):
    """Why a deviation is accepted, until when, where it is tracked and who owns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1)
    expires: dt.date | None = None
    tracker: str | None = None
    owner: str | None = None

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say why the deviation is accepted")
        return value.strip()

    @field_validator("expires", mode="before")
    @classmethod
    def _expires(cls, value: Any) -> Any:
        # YAML reads 2027-01-31 as a date already; a string must be an ISO date, not a time
        if isinstance(value, dt.datetime):
            raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"not an ISO date (YYYY-MM-DD): {value!r}") from None
        return value

    @field_validator("tracker")
    @classmethod
    def _tracker(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"must be a URL (https://...): {value!r}")
        return value

    def expired(self, today: dt.date) -> bool:
        """True from the ``expires`` day on (an entry until 2027-01-31 is gone on that day)."""
        return self.expires is not None and today >= self.expires

    def active(self, today: dt.date) -> bool:
        return not self.expired(today)

    def acceptance_text(self) -> str:
        """``until 2027-01-31: reason (tracker), owner x`` for messages and reports."""
        head = f"until {self.expires.isoformat()}: " if self.expires else ""
        tail = f" ({self.tracker})" if self.tracker else ""
        owner = f", owner {self.owner}" if self.owner else ""
        return f"{head}{self.reason}{tail}{owner}"

    def acceptance_fields(self) -> dict[str, str]:
        """The acceptance as strings (for JSON report properties): reason, expires, ..."""
        out = {"reason": self.reason}
        if self.expires:
            out["expires"] = self.expires.isoformat()
        if self.tracker:
            out["tracker"] = self.tracker
        if self.owner:
            out["owner"] = self.owner
        return out


def today() -> dt.date:
    """The date that decides expiry: the local date of the machine running pytest."""
    return dt.date.today()
