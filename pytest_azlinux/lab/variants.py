"""Lab image variants: the identity files each lab host carries (data in ``variants/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from .errors import LabError

VARIANTS_DIR = Path(__file__).with_name("variants")
DEFAULT_VARIANTS = ("azl3", "azl3-hwe", "mariner2")


@dataclass(frozen=True)
class Variant:
    """One image variant: a name, the identity files (absolute path -> text) and the image
    profile its hosts are judged against."""

    name: str
    description: str
    files: dict[str, str]
    profile: str | None = None


def variant_names() -> list[str]:
    return sorted(p.stem for p in VARIANTS_DIR.glob("*.yaml"))


@cache
def load_variant(name: str) -> Variant:
    path = VARIANTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LabError(f"unknown lab variant {name!r} (known: {', '.join(variant_names())})")
    data = yaml.safe_load(path.read_text())
    files = {str(k): str(v) for k, v in data["files"].items()}
    for target in files:
        if not target.startswith("/etc/") or "/" in target[5:]:
            raise LabError(f"{path}: identity file {target!r} must be directly under /etc")
    profile = data.get("profile")
    return Variant(name, str(data.get("description", "")), files,
                   str(profile) if profile else None)


def check_variants(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate variant names early (a clear error before anything is created)."""
    if not names:
        raise LabError("at least one variant is needed")
    for name in names:
        load_variant(name)
    return list(names)
