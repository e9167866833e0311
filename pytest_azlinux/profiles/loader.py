"""Load profile files (ours, shipped in the package, and users' own) and resolve ``extends``.

A user directory may add profiles or replace ours by name; a user profile may extend ours.
Every error is one line naming the file and the field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import (
    ProfileError,
    )
from ..yamlfile import load_yaml
from .model import REQUIRED_FIELDS, PackageMinimum, Profile, ProfileDoc

BUILTIN_DIR = Path(__file__).parent
ENV_DIRS = "AZL_PROFILES_DIR"



@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    doc: ProfileDoc


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else ("." if out else "") + str(item)
    return out or "(profile)"


def parse_profile(text: str, path: Path) -> ProfileDoc:
    """Validate one profile file's text; ProfileError names the file and the field."""
    data = load_yaml(text, str(path), ProfileError)
    if not isinstance(data, Mapping):
        raise ProfileError(f"{path}: a profile must be a mapping (name, extends, expect)")
    try:
        return ProfileDoc.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing" and err["loc"] and err["loc"][-1] == "source":
            msg = "every expectation needs a 'source:' note"
        raise ProfileError(f"{path}: field '{_format_loc(err['loc'])}': {msg}{more}") from None


def profile_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


class ProfileSet:
    """Profiles by name (built-in, then user directories in order: later ones win)."""

    def __init__(self, entries: Iterable[_Entry]) -> None:
        self._entries: dict[str, _Entry] = {}
        for entry in entries:
            self._entries[entry.name] = entry
        self._aliases: dict[str, str] = {}
        for entry in self._entries.values():
            for alias in entry.doc.aliases:
                self._aliases.setdefault(alias, entry.name)
        self._resolved: dict[str, Profile] = {}

    def names(self, include_abstract: bool = False) -> list[str]:
        return sorted(n for n, e in self._entries.items() if include_abstract or not e.doc.abstract)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def get(self, name: str, wanted_by: str = "") -> Profile:
        """The resolved profile ``name`` (or alias); ProfileError if unknown or invalid."""
        real = name if name in self._entries else self._aliases.get(name)
        if real is None:
            prefix = f"{wanted_by}: " if wanted_by else ""
            raise ProfileError(
                f"{prefix}unknown profile {name!r} (known: {', '.join(self.names())})"
            )
        if real not in self._resolved:
            self._resolved[real] = self._resolve(real, ())
        return self._resolved[real]

    def all(self) -> list[Profile]:
        return [self.get(n) for n in self.names()]

    def _merged(self, name: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
        """Merged ``expect`` mapping (parent first, child over it) and the chain of names."""
        entry = self._entries[name]
        if name in seen:
            cycle = " -> ".join((*seen, name))
            raise ProfileError(f"{entry.path}: field 'extends': cycle {cycle}")
        base: dict[str, Any] = {}
        chain = [name]
        if entry.doc.extends:
            parent = entry.doc.extends
            if parent not in self._entries:
                raise ProfileError(
                    f"{entry.path}: field 'extends': unknown profile {parent!r} "
                    f"(known: {', '.join(self.names(include_abstract=True))})"
                )
            base, parent_chain = self._merged(parent, (*seen, name))
            chain += parent_chain
        expect = entry.doc.expect
        for key in expect.model_fields_set:
            value = getattr(expect, key)
            if key == "packages":
                packages = dict(base.get("packages", {}))
                for pkg, rule in value.items():
                    if rule is None:
                        packages.pop(pkg, None)
                    else:
                        packages[pkg] = rule
                base["packages"] = packages
            elif value is not None:
                base[key] = value
            else:
                base.pop(key, None)
        return base, chain

    def _resolve(self, name: str, seen: tuple[str, ...]) -> Profile:
        entry = self._entries[name]
        merged, chain = self._merged(name, seen)
        missing = [f for f in REQUIRED_FIELDS if f not in merged]
        if missing:
            via = f" nor along extends {' -> '.join(chain)}" if len(chain) > 1 else ""
            raise ProfileError(
                f"{entry.path}: field 'expect.{missing[0]}' is required (not set in this file{via})"
            )
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        renamed = {"version": "version_pattern", "kernel_release": "kernel_release_pattern"}
        for key, sourced in merged.items():
            if key == "packages":
                continue
            value = sourced.value
            values[renamed.get(key, key)] = tuple(value) if isinstance(value, list) else value
            sources[key] = sourced.source
        packages = tuple(
            PackageMinimum(name=pkg, min=rule.min, required=rule.required, source=rule.source)
            for pkg, rule in sorted(merged.get("packages", {}).items())
        )
        not_applicable: dict[str, str] = {}
        for link in reversed(chain):  # parents first, the profile itself last
            for control, reason in self._entries[link].doc.hardening_not_applicable.items():
                if reason is None:
                    not_applicable.pop(control, None)
                else:
                    not_applicable[control] = reason
        return Profile(
            name=name,
            description=entry.doc.description,
            path=str(entry.path),
            chain=tuple(chain),
            aliases=tuple(entry.doc.aliases),
            abstract=entry.doc.abstract,
            packages=packages,
            sources=sources,
            hardening_not_applicable=not_applicable,
            **values,
        )


def _read_dir(directory: Path) -> list[_Entry]:
    if not directory.is_dir():
        raise ProfileError(f"{directory}: profiles directory does not exist")
    entries: list[_Entry] = []
    names: dict[str, Path] = {}
    for path in profile_files(directory):
        try:
            text = path.read_text()
        except OSError as exc:
            raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from None
        doc = parse_profile(text, path)
        name = doc.name or path.stem
        if name in names:
            raise ProfileError(f"{path}: field 'name': profile {name!r} also in {names[name]}")
        names[name] = path
        entries.append(_Entry(name, path, doc))
    return entries


@lru_cache(maxsize=16)
def _load_cached(dirs: tuple[Path, ...]) -> ProfileSet:
    entries: list[_Entry] = []
    for directory in (BUILTIN_DIR, *dirs):
        entries.extend(_read_dir(directory))
    return ProfileSet(entries)


def load_profiles(extra_dirs: Iterable[str | Path] = ()) -> ProfileSet:
    """Built-in profiles plus those of ``extra_dirs`` (later directories override by name)."""
    dirs = tuple(Path(os.path.expanduser(str(d))).resolve() for d in extra_dirs if str(d))
    return _load_cached(dirs)


def dirs_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """``AZL_PROFILES_DIR`` (``os.pathsep``-separated) as a list of directories."""
    value = (os.environ if env is None else env).get(ENV_DIRS, "")
    return [d for d in value.split(os.pathsep) if d]
