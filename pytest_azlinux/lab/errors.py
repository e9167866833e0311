"""Errors of the lab: one line, naming what is wrong and how to fix it."""

from __future__ import annotations

from ..errors import LabError

__all__ = ["LabError"]
