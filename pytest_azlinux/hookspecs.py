"""The hooks through which suites and target kinds are registered.

The shipped suites and kinds use them too (``builtin.py``): a third-party package registers
its own exactly the same way, from any pytest plugin (a ``pytest11`` entry point, ``-p``, or
the rootdir's ``conftest.py``). Both are called once, in ``pytest_configure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .kinds import TargetKind
    from .suite_table import Suite


@pytest.hookspec
def pytest_azl_suites() -> Sequence[Suite]:
    """The suites this plugin adds: each one's marker, fixtures module and settings model."""
    raise NotImplementedError


@pytest.hookspec
def pytest_azl_target_kinds() -> Sequence[TargetKind]:
    """The target kinds this plugin adds: each one's ``kind:`` name, model and resolver."""
    raise NotImplementedError
