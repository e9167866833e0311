"""One way to read a suite's settings: ``suites.<name>`` of a target, validated by one model.

Every suite that takes settings declares a ``SuiteSettings`` subclass with its ``suite`` name
and registers it with ``@register``. The plugin validates every selected target's
``suites.*`` mappings at start-up (a bad value is a usage error naming the target and the
field, exit 4), and fixtures read the validated model with ``SelectedTarget.settings_for``.

Host and pod variants of one suite (the escape probe on hosts and in pods) share one model.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SettingsError

# Modules that register the shipped suites' models (imported on first validation).
BUILTIN_MODULES = (
    "pytest_azlinux.network.settings",
    "pytest_azlinux.containers.settings",
    "pytest_azlinux.selinux.settings",
    "pytest_azlinux.storage.settings",
    "pytest_azlinux.cluster.settings",
    "pytest_azlinux.profiles.settings",
    "pytest_azlinux.hardening.settings",
    "pytest_azlinux.gate.settings",
)


class SuiteSettings(BaseModel):
    """Base of every suite's settings: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    suite: ClassVar[str]


S = TypeVar("S", bound=SuiteSettings)
_REGISTRY: dict[str, type[SuiteSettings]] = {}


def register(model: type[S]) -> type[S]:
    """Class decorator: ``model`` owns ``suites.<model.suite>`` (one model per suite)."""
    owner = _REGISTRY.get(model.suite)
    # the same class again (its module imported afresh, as pytester's in-process runs do)
    same = owner is not None and (owner.__module__, owner.__qualname__) == (
        model.__module__, model.__qualname__)
    if owner is not None and not same:
        raise SettingsError(
            f"suites.{model.suite}: settings already owned by {owner.__module__}.{owner.__name__}"
        )
    _REGISTRY[model.suite] = model
    return model


def registered() -> Mapping[str, type[SuiteSettings]]:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a missing dependency inside the module is a bug
                raise
    return dict(_REGISTRY)


def parse(model: type[S], raw: Any, target: str) -> S:
    """Validate ``raw`` as ``suites.<model.suite>`` of ``target``; one line on error."""
    prefix = f"target {target!r}: field 'suites.{model.suite}"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{prefix}': must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, Exception):
            msg = str(ctx_error)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SettingsError(f"{prefix}{where}': {msg}{more}") from None


def validate_all(target: str, suites: Mapping[str, Any]) -> dict[str, SuiteSettings]:
    """Every registered suite's settings of one target, validated (defaults where unset).

    Keys of suites nobody registered are left to their users' own suites.
    """
    return {name: parse(model, suites.get(name), target) for name, model in registered().items()}
