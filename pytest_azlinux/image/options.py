"""``--azl-image PATH [--azl-image-profile NAME]`` and ``--azl-keep``: the implicit target.

``--azl-image`` defines a target named ``image`` (kind ``image``) and selects it, so a
one-off run needs no targets file: ``pytest --azl-image disk.vhd``. ``--azl-keep`` sets
``keep`` on every selected image target (leave the VMs running and say how to ssh in).
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import TargetsError
from ..targets import ImageTarget, TargetsFile, validate_target

IMPLICIT_TARGET = "image"


def apply_image_options(
    targets: TargetsFile, names: list[str], *, image: str | None, profile: str | None,
    keep: bool,
) -> tuple[TargetsFile, list[str]]:
    """The targets file and selected names once the image options are applied."""
    found = dict(targets.targets)
    names = list(names)
    if profile and not image:
        raise TargetsError("--azl-image-profile: needs --azl-image PATH")
    if image:
        if targets.path is not None and IMPLICIT_TARGET in found:
            raise TargetsError(
                f"--azl-image: {targets.path} already defines a target {IMPLICIT_TARGET!r}; "
                f"select it with --azl-target {IMPLICIT_TARGET}, or rename it"
            )
        raw: dict[str, object] = {"kind": "image", "path": image,
                                  "description": f"image file {image}"}  # fmt: skip
        if profile:
            raw["profile"] = profile
        found[IMPLICIT_TARGET] = validate_target(IMPLICIT_TARGET, raw, "--azl-image")
        if IMPLICIT_TARGET not in names:
            names.append(IMPLICIT_TARGET)
    if keep:
        for name in names:
            target = found.get(name)
            if isinstance(target, ImageTarget):
                found[name] = target.model_copy(update={"keep": True})
    return replace(targets, targets=found), names
