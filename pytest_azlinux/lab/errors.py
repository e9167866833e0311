"""Errors of the lab: one line, naming what is wrong and how to fix it."""

from __future__ import annotations

from ..errors import AzlError


class LabError(AzlError):
    """The lab cannot be brought up, changed or taken down."""
