"""One way to read a suite's settings: ``suites.<name>`` of a target, validated by one model.

Every suite that takes settings declares a ``SuiteSettings`` subclass with its ``suite`` name
and names it in its ``Suite`` entry (``suite_table.py``). The plugin validates every selected
target's ``suites.*`` mappings at start-up (a bad value or an unknown suite is a usage error
naming the target and the field, exit 4), and fixtures read the validated model with
``SelectedTarget.settings_for``.

Host and pod variants of one suite (the escape probe on hosts and in pods) share one model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SettingsError


class SuiteSettings(BaseModel):
    """Base of every suite's settings: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    suite: ClassVar[str]


S = TypeVar("S", bound=SuiteSettings)


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


def validate_all(
    target: str, suites: Mapping[str, Any], models: Mapping[str, type[SuiteSettings] | None]
) -> dict[str, SuiteSettings]:
    """Every registered suite's settings of one target, validated (defaults where unset).

    A key no suite registered is refused, naming the known suites (a misspelt suite name
    would otherwise be ignored without a word).
    """
    unknown = sorted(set(suites) - set(models))
    if unknown:
        known = ", ".join(sorted(models)) or "none"
        raise SettingsError(
            f"target {target!r}: field 'suites.{unknown[0]}': unknown suite (known: {known})"
        )
    return {
        name: parse(model, suites.get(name), target)
        for name, model in models.items()
        if model is not None
    }
