"""Load the controls files (controls/*.yaml, shipped in the package) into one ControlSet.

Every mistake is one line naming the file, the control and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ControlsError, TargetsError
from ..yamlfile import load_yaml
from .base import CheckKind
from .checks import KINDS, kind_names
from .model import Control, controls_file_model

CONTROLS_DIR = Path(__file__).parent / "controls"


@dataclass(frozen=True)
class Area:
    """One controls file: its area code, title, description and where it came from."""

    code: str
    title: str
    description: str
    path: Path


class ControlSet:
    """Every control, in file order (files sorted by name), by id."""

    def __init__(self, areas: Sequence[tuple[Area, Sequence[Control]]]) -> None:
        self.areas = [area for area, _ in areas]
        self.controls: list[Control] = [c for _, controls in areas for c in controls]
        self._by_id = {c.id: c for c in self.controls}
        self._area_of = {c.id: area for area, controls in areas for c in controls}

    def __iter__(self) -> Iterator[Control]:
        return iter(self.controls)

    def __len__(self) -> int:
        return len(self.controls)

    def __contains__(self, control_id: object) -> bool:
        return control_id in self._by_id

    def get(self, control_id: str) -> Control:
        try:
            return self._by_id[control_id]
        except KeyError:
            raise ControlsError(f"unknown control id {control_id!r}") from None

    def in_area(self, area: Area) -> list[Control]:
        return [c for c in self.controls if self._area_of[c.id] is area]


def _where(data: Any, loc: Sequence[int | str]) -> tuple[str, str]:
    """(``control AZL-X-001: `` or empty, the field path inside it) for a validation error."""
    prefix = ""
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "controls" and isinstance(rest[1], int):
        index = rest[1]
        entries = data.get("controls") if isinstance(data, Mapping) else None
        entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
        cid = entry.get("id") if isinstance(entry, Mapping) else None
        prefix = f"control {cid}: " if cid else f"controls[{index}]: "
        rest = rest[2:]
    field = ""
    for item in rest:
        field += f"[{item}]" if isinstance(item, int) else ("." if field else "") + str(item)
    return prefix, field or "(file)"


def parse_controls_file(
    text: str, path: Path, kinds: tuple[type[CheckKind], ...] = KINDS
) -> tuple[Area, list[Control]]:
    try:
        data = load_yaml(text, str(path))
    except TargetsError as exc:  # load_yaml's one-line message, as a controls error
        raise ControlsError(str(exc)) from None
    if not isinstance(data, Mapping):
        raise ControlsError(f"{path}: a controls file must be a mapping (area, title, controls)")
    try:
        doc = controls_file_model(kinds).model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        # pydantic puts the check's kind in the location (check.sysctl.key): drop it
        if "check" in loc:
            i = loc.index("check")
            if i + 1 < len(loc) and loc[i + 1] in kind_names(kinds):
                del loc[i + 1]
        prefix, field = _where(data, loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ControlsError(f"{path}: {prefix}field '{field}': {msg}{more}") from None
    area = Area(doc.area, doc.title, doc.description.strip(), path)
    controls = []
    for control in doc.controls:
        if control.area != doc.area:
            raise ControlsError(
                f"{path}: control {control.id}: field 'id': not in this file's area {doc.area} "
                f"(AZL-{doc.area}-NNN)"
            )
        if doc.applies_if:
            merged = {**doc.applies_if, **control.applies_if}
            control = control.model_copy(update={"applies_if": merged})
        if doc.remediation_image and not control.remediation_image:
            control = control.model_copy(update={"remediation_image": doc.remediation_image})
        controls.append(control)
    return area, controls


def load_controls_from(directory: Path, kinds: tuple[type[CheckKind], ...] = KINDS) -> ControlSet:
    """The controls files of ``directory``, whose checks may use ``kinds``."""
    if not directory.is_dir():
        raise ControlsError(f"{directory}: controls directory does not exist")
    areas: list[tuple[Area, list[Control]]] = []
    seen: dict[str, Path] = {}
    codes: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        area, controls = parse_controls_file(path.read_text(), path, kinds)
        if area.code in codes:
            raise ControlsError(
                f"{path}: field 'area': {area.code} is also the area of {codes[area.code]}"
            )
        codes[area.code] = path
        for control in controls:
            if control.id in seen:
                raise ControlsError(
                    f"{path}: control {control.id}: field 'id': also defined in {seen[control.id]}"
                )
            seen[control.id] = path
        areas.append((area, controls))
    if not areas:
        raise ControlsError(f"{directory}: no controls files (*.yaml)")
    return ControlSet(areas)


@lru_cache(maxsize=1)
def load_controls() -> ControlSet:
    """The shipped controls (read once per process)."""
    return load_controls_from(CONTROLS_DIR)
