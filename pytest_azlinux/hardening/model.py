"""Hardening controls as data: one YAML file per area (controls/*.yaml), one entry per control.

A control: a stable ``id`` (ours: ``AZL-<AREA>-<NNN>``, never reused or renumbered), ``title``,
``severity`` (low/medium/high), ``level`` (1: every image should pass; 2: defence in depth
that may cost function), ``rationale``, the ``check`` (what is read, what passes: a kind from
checks.py), ``remediation`` (the command or config line that fixes it), ``references`` (the
public rule it corresponds to: a ComplianceAsCode rule id, its CCE where one is public) and,
where Azure Linux differs from other distributions, ``azure_linux``.

``applies_if`` names image-profile attributes the control needs (``sshd: true`` for sshd
controls: OS Guard images run no sshd; ``immutable: false`` for a control that only makes
sense where the host can be changed); an image profile may also mark controls not
applicable by id with a reason (``hardening_not_applicable`` in profiles/*.yaml).
``remediation_image`` (per control, or per file as a default) is the fix on an immutable
image (ACL, OS Guard: profile ``immutable: true``): a change to the image build, since a
command on the host does not persist there.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, create_model, model_validator

from .base import CheckKind, Strict
from .checks import KINDS


def check_type(kinds: tuple[type[CheckKind], ...]) -> Any:
    """The ``check:`` field's type for a table of kinds: one of them, chosen by ``kind``."""
    return Annotated[Union[kinds], Field(discriminator="kind")]  # noqa: UP007  (a runtime tuple)


if TYPE_CHECKING:
    Check = CheckKind
else:
    Check = check_type(KINDS)

Severity = Literal["low", "medium", "high"]
Level = Literal[1, 2]
ID_PATTERN = r"^AZL-[A-Z]{2,6}-\d{3}$"
# Profile attributes a control may depend on (Profile fields of type bool).
PROFILE_FLAGS = ("sshd", "fips", "verity_usr", "ipe", "immutable")
# The fix on an immutable image (profile ``immutable: true``) when a control or its file
# names none: the host's /usr is read-only and /etc is rebuilt from the image, so a command
# on the host is not a fix.
IMAGE_BUILD = (
    "change the image build, not the host: an Image Customizer config "
    "(os.additionalFiles, os.packages, os.services, os.kernelCommandLine) or a system "
    "extension for what lives under /usr."
)


class Reference(Strict):
    """A public rule the control corresponds to (no benchmark text is copied)."""

    cac: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+$")  # ComplianceAsCode rule id
    cce: str | None = Field(default=None, pattern=r"^CCE-\d{4,5}-\d$")  # for rhel9 in CaC
    url: str | None = Field(default=None, pattern=r"^https://")

    @model_validator(mode="after")
    def _something(self) -> Reference:
        if not (self.cac or self.url):
            raise ValueError("a reference needs a cac rule id or a url")
        if self.cce and not self.cac:
            raise ValueError("a cce belongs to a cac rule: set cac too")
        return self

    def text(self) -> str:
        if self.cac:
            return f"{self.cac} ({self.cce})" if self.cce else self.cac
        return self.url or ""


class Control(Strict):
    """One control as written in a controls file."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=5)
    severity: Severity
    level: Level
    rationale: str = Field(min_length=20)
    check: Check
    remediation: str = Field(min_length=5)
    # the fix on an immutable image: a change to the image build (Image Customizer, a sysext)
    remediation_image: str = ""
    references: list[Reference] = Field(min_length=1)
    azure_linux: str = ""  # what Azure Linux 3.0 ships or where it differs, with the source
    applies_if: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _flags(self) -> Control:
        unknown = [k for k in self.applies_if if k not in PROFILE_FLAGS]
        if unknown:
            raise ValueError(
                f"applies_if: unknown profile attribute {unknown[0]!r} "
                f"(known: {', '.join(PROFILE_FLAGS)})"
            )
        return self

    @property
    def area(self) -> str:
        return self.id.split("-")[1]

    def remediation_for(self, immutable: bool | None) -> str:
        """The fix to show: on an immutable image, the change to the image build."""
        if not immutable:
            return self.remediation
        return f"{self.remediation_image or IMAGE_BUILD} The setting: {self.remediation}"

    def references_text(self) -> str:
        return ", ".join(r.text() for r in self.references)


class ControlsFile(Strict):
    """One file of controls: an area (the middle part of its ids), defaults, the controls."""

    area: str = Field(pattern=r"^[A-Z]{2,6}$")
    title: str
    description: str = ""
    applies_if: dict[str, bool] = Field(default_factory=dict)  # default for its controls
    remediation_image: str = ""  # default for its controls
    controls: list[Control] = Field(min_length=1)


@lru_cache(maxsize=4)
def controls_file_model(kinds: tuple[type[CheckKind], ...]) -> type[ControlsFile]:
    """``ControlsFile`` whose controls may use ``kinds`` (the shipped table: ``ControlsFile``
    itself; a table with more kinds, e.g. a test's toy kind: a model made for it)."""
    if kinds == KINDS:
        return ControlsFile
    control = create_model("Control", __base__=Control, check=(check_type(kinds), ...))
    return create_model(
        "ControlsFile", __base__=ControlsFile, controls=(list[control], Field(min_length=1))  # type: ignore[valid-type]
    )
