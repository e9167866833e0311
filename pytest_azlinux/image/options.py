"""``--azl-image PATH [--azl-image-profile NAME]`` and ``--azl-keep``: the implicit target.

``--azl-image`` defines a target named ``image`` (kind ``image``) and selects it, so a
one-off run needs no targets file: ``pytest --azl-image disk.vhd``. ``--azl-keep`` sets
``keep`` on every selected image target (leave the VMs running and say how to ssh in).
``--azl-image-provisioning``, ``--azl-image-firmware``, ``--azl-image-user`` and
``--azl-image-tpm`` set the implicit target's fields of the same names; their values are
checked by the target's model, so a bad one is the same one-line error as in a targets file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..errors import TargetsError
from ..targets import ImageTarget, TargetsFile, validate_target

IMPLICIT_TARGET = "image"


def apply_image_options(
    targets: TargetsFile, names: list[str], *, image: str | None, profile: str | None,
    keep: bool, fields: Mapping[str, object] | None = None,
) -> tuple[TargetsFile, list[str]]:
    """The targets file and selected names once the image options are applied; ``fields``:
    more fields of the implicit target (option name -> value, None when not given)."""
    found = dict(targets.targets)
    names = list(names)
    given = {k: v for k, v in (fields or {}).items() if v is not None and v is not False}
    if profile and not image:
        raise TargetsError("--azl-image-profile: needs --azl-image PATH")
    if given and not image:
        option = "--azl-image-" + next(iter(given)).replace("_", "-")
        raise TargetsError(f"{option}: needs --azl-image PATH")
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
        raw.update(given)
        found[IMPLICIT_TARGET] = validate_target(IMPLICIT_TARGET, raw, "--azl-image")
        if IMPLICIT_TARGET not in names:
            names.append(IMPLICIT_TARGET)
    if keep:
        for name in names:
            target = found.get(name)
            if isinstance(target, ImageTarget):
                found[name] = target.model_copy(update={"keep": True})
    return replace(targets, targets=found), names
