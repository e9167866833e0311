"""The hooks through which suites and target kinds are registered.

The shipped suites and kinds use them too (``builtin.py``): a third-party package registers
its own exactly the same way, from any pytest plugin (a ``pytest11`` entry point, ``-p``, or
the rootdir's ``conftest.py``). Both are called at start-up (the kinds when the targets file
is loaded, the suites in ``pytest_configure``); an implementation may take ``config``.

Hooks rather than an entry-point group of our own: a package that is a pytest plugin
already has its ``pytest11`` entry point, a suite in a checkout (a conftest, ``-p``) needs no
installed metadata, and pytest's own ``-p no:NAME`` turns a package's suites off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .kinds import TargetKind
    from .suite_table import Suite


@pytest.hookspec
def pytest_azl_suites(config: pytest.Config) -> Sequence[Suite]:  # type: ignore[empty-body]
    """The suites this plugin adds: each one's markers, fixtures module and settings model."""


@pytest.hookspec
def pytest_azl_target_kinds(  # type: ignore[empty-body]
    config: pytest.Config,
) -> Sequence[TargetKind]:
    """The target kinds this plugin adds: each one's ``kind:`` name, model and resolver."""
