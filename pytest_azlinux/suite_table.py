"""One table of suites: each suite's markers, fixtures module and settings model, in one entry.

A plugin returns ``Suite`` entries from the ``pytest_azl_suites`` hook (``hookspecs.py``);
the shipped suites do so in ``builtin.py``. At start-up every entry is imported: a fixtures
module or settings model that cannot be imported stops the run with one line, and only the
suites named here may appear under ``suites:`` in a target.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType

from .errors import ConfigError
from .settings import SuiteSettings


@dataclass(frozen=True)
class Suite:
    """A suite as registered: ``name`` is its ``suites.<name>`` key.

    ``markers`` are marker lines (``"azl_network: network throughput suite"``), ``fixtures``
    a module registered as a pytest plugin, ``settings`` a ``"module:Class"`` naming the
    ``SuiteSettings`` model of ``suites.<name>`` (without one, the mapping is taken as it is).
    ``live``: what the suite does that needs a running host (``"measures throughput between
    hosts"``); its tests are skipped on a recorded image, saying so. None: it reads evidence
    a recording may hold.
    """

    name: str
    markers: tuple[str, ...] = ()
    fixtures: str | None = None
    settings: str | None = None
    live: str | None = None


@dataclass(frozen=True)
class LoadedSuite:
    """A suite with its modules imported."""

    suite: Suite
    fixtures: ModuleType | None
    model: type[SuiteSettings] | None


class SuiteTableError(ConfigError):
    """A suite entry that cannot be used (a module that does not import, a name twice)."""


def load_suites(entries: Iterable[Suite]) -> dict[str, LoadedSuite]:
    """Import every entry's modules; a failure names the suite and what did not import."""
    out: dict[str, LoadedSuite] = {}
    for entry in entries:
        if entry.name in out:
            if out[entry.name].suite == entry:  # the same plugin registered twice
                continue
            raise SuiteTableError(f"suite {entry.name!r} is registered twice")
        fixtures = _import(entry, entry.fixtures) if entry.fixtures else None
        model = _model(entry) if entry.settings else None
        out[entry.name] = LoadedSuite(entry, fixtures, model)
    return out


def _import(entry: Suite, module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SuiteTableError(f"suite {entry.name!r}: cannot import {module}: {exc}") from None


def _model(entry: Suite) -> type[SuiteSettings]:
    module, _, attr = (entry.settings or "").partition(":")
    found = getattr(_import(entry, module), attr, None)
    if not (isinstance(found, type) and issubclass(found, SuiteSettings)):
        raise SuiteTableError(
            f"suite {entry.name!r}: settings {entry.settings} is not a SuiteSettings model"
        )
    if getattr(found, "suite", entry.name) != entry.name:
        raise SuiteTableError(
            f"suite {entry.name!r}: settings {entry.settings} is for suites.{found.suite}"
        )
    return found


def settings_models(table: Mapping[str, LoadedSuite]) -> dict[str, type[SuiteSettings] | None]:
    """Each suite's settings model (None: its ``suites.<name>`` mapping is taken as it is)."""
    return {name: loaded.model for name, loaded in table.items()}
