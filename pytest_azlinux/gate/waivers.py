"""Waivers: known failures accepted for a while, with a reason and an end date.

A waivers file (``azl-waivers.yaml`` beside the targets file, ``--azl-waivers PATH`` or the
ini option ``azl_waivers_file``)::

    max_days: 90                  # optional: the longest a waiver may run (default 90)
    waivers:
      - match: "suites/image/test_kernel.py::*"   # node id glob (* and ?; [ is literal)
        targets: [nodepool-canary]                # optional: target name globs
        images: ["azurelinux-3.0.2025*"]          # optional: image key globs
        hosts: [aks-canary-1]                     # optional: host globs
        reason: "HWE kernel 6.12 not yet in the profile"   # required
        tracker: https://example.net/OPS-42
        owner: platform-team
        expires: 2027-01-31                       # required unless permanent: true
      - match: {control: AZL-SSH-*}                # a hardening control id glob
        reason: "..."
        permanent: true                           # no end date (for the lab's own limits)

A waiver applies from the day it is written until the day before ``expires``
(``Acceptance.expired``). A node id glob without ``[`` also matches every parametrization of
the test (``...::test_x`` matches ``...::test_x[azl-1]``). The first active waiver that matches
a test wins. Everything in the file is checked when it is loaded: a mistake is one line
naming the file, the waiver and the field (``WaiversError``, a usage error, exit 4).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..acceptance import Acceptance
from ..errors import TargetsError, WaiversError
from ..yamlfile import load_yaml, read_text

DEFAULT_FILE = "azl-waivers.yaml"
DEFAULT_MAX_DAYS = 90


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one; everything else literal (node ids hold ``[``)."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    return _glob(pattern).fullmatch(value) is not None


class ControlMatch(BaseModel):
    """``match: {control: ID}``: a hardening control id (glob), not a node id."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    control: str = Field(min_length=1)


class Waiver(Acceptance):
    """One waiver: what it matches, and the acceptance (reason, expires, tracker, owner)."""

    match: str | ControlMatch
    targets: list[str] | None = None
    images: list[str] | None = None
    hosts: list[str] | None = None
    permanent: bool = False

    @model_validator(mode="after")
    def _needs_an_end(self) -> Waiver:
        if isinstance(self.match, str) and not self.match.strip():
            raise ValueError("match: must be a node id glob or {control: ID}")
        if self.expires is None and not self.permanent:
            raise ValueError(
                "expires: required (an ISO date), or permanent: true for a limit that stays"
            )
        return self

    def matches(self, subject: Subject) -> bool:
        if isinstance(self.match, ControlMatch):
            if subject.control is None or not glob_match(self.match.control, subject.control):
                return False
        elif not _nodeid_matches(self.match, subject.nodeid):
            return False
        return all(
            globs is None or (value is not None and any(glob_match(g, value) for g in globs))
            for globs, value in ((self.targets, subject.target), (self.images, subject.image),
                                 (self.hosts, subject.host))
        )

    def describe_match(self) -> str:
        what = (f"control {self.match.control}" if isinstance(self.match, ControlMatch)
                else self.match)
        scope = [f"{name} {','.join(globs)}" for name, globs in
                 (("targets", self.targets), ("images", self.images), ("hosts", self.hosts))
                 if globs is not None]
        return what + (f" ({'; '.join(scope)})" if scope else "")

    def message(self) -> str:
        """``waived until 2027-01-31: reason (tracker)``: the terminal reason and the JUnit
        ``<skipped message>`` of a waived failure."""
        until = f"until {self.expires.isoformat()}" if self.expires else "permanently"
        tracker = f" ({self.tracker})" if self.tracker else ""
        return f"waived {until}: {self.reason}{tracker}"


def _nodeid_matches(pattern: str, nodeid: str) -> bool:
    if glob_match(pattern, nodeid):
        return True
    # "...::test_x" covers every parametrization "...::test_x[...]"
    return "[" not in pattern and nodeid.endswith("]") and "[" in nodeid and glob_match(
        pattern, nodeid[: nodeid.index("[")]
    )


@dataclass(frozen=True)
class Subject:
    """What a waiver is matched against: one test on one host."""

    nodeid: str
    control: str | None = None
    target: str | None = None
    image: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class Loaded:
    """A waiver and where it is written (``azl-waivers.yaml[3]``): its identity in reports."""

    waiver: Waiver
    source: str
    # Shipped by a target (the lab's own): a known limit of the hosts it makes, reported
    # only where it applied, never as stale or no longer needed.
    shipped: bool = False


@dataclass(frozen=True)
class Lookup:
    """The waivers that match one test: the one that applies, else an expired one."""

    active: Loaded | None = None
    expired: Loaded | None = None


@dataclass(frozen=True)
class WaiverSet:
    """Every waiver of the run (the users' file, then a target kind's own)."""

    waivers: tuple[Loaded, ...] = ()
    files: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.waivers)

    def lookup(self, subject: Subject, today: dt.date) -> Lookup:
        expired: Loaded | None = None
        for loaded in self.waivers:
            if not loaded.waiver.matches(subject):
                continue
            if loaded.waiver.active(today):
                return Lookup(active=loaded, expired=expired)
            expired = expired or loaded
        return Lookup(expired=expired)

    def expired(self, today: dt.date) -> list[Loaded]:
        return [w for w in self.waivers if w.waiver.expired(today)]

    def as_shipped(self) -> WaiverSet:
        """The same waivers, marked as a target's own (``Loaded.shipped``)."""
        return WaiverSet(tuple(replace(w, shipped=True) for w in self.waivers), self.files)

    def __add__(self, other: WaiverSet) -> WaiverSet:
        return WaiverSet(self.waivers + other.waivers, self.files + other.files)


def parse_waivers(
    text: str, source: str, today: dt.date, *, label: str | None = None,
    targets: Sequence[str] | None = None,
) -> WaiverSet:
    """Validate waivers-file text. ``label`` names the waivers in reports (default: the
    file name); ``targets`` scopes waivers that name no targets (a kind's own waivers)."""
    try:
        data = load_yaml(text, source)
    except TargetsError as exc:
        raise WaiversError(str(exc)) from None
    except ValueError as exc:  # PyYAML's own date check (2027-13-01) is not a YAMLError
        raise WaiversError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise WaiversError(f"{source}: top level must be a mapping with a 'waivers' key")
    unknown = set(data) - {"waivers", "max_days"}
    if unknown:
        raise WaiversError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    max_days = data.get("max_days", DEFAULT_MAX_DAYS)
    if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 1:
        raise WaiversError(f"{source}: field 'max_days': must be a whole number of days >= 1")
    raw = data.get("waivers") or []
    if not isinstance(raw, list):
        raise WaiversError(f"{source}: 'waivers' must be a list of waivers")
    label = label or Path(source).name
    out: list[Loaded] = []
    for index, entry in enumerate(raw):
        where = f"{source}: waiver [{index}]"
        if not isinstance(entry, Mapping):
            raise WaiversError(f"{where}: must be a mapping with match, reason and expires")
        waiver = _validate(entry, where)
        if waiver.expires is not None and not waiver.permanent:
            days = (waiver.expires - today).days
            if days > max_days:
                raise WaiversError(
                    f"{where} ({waiver.describe_match()}): field 'expires': "
                    f"{waiver.expires.isoformat()} is {days} days away, more than max_days "
                    f"{max_days}; shorten it, or set permanent: true (with its reason)"
                )
        if targets is not None and waiver.targets is None:
            waiver = waiver.model_copy(update={"targets": list(targets)})
        out.append(Loaded(waiver, f"{label}[{index}]"))
    return WaiverSet(tuple(out))


def _validate(entry: Mapping[str, Any], where: str) -> Waiver:
    data = dict(entry)
    for key in ("targets", "images", "hosts"):  # one name is a list of one
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    try:
        return Waiver.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # ``match`` is a glob or {control: ID}: report the branch the entry was written as
        branch = "ControlMatch" if isinstance(data.get("match"), Mapping) else "str"
        other = "str" if branch == "ControlMatch" else "ControlMatch"
        errors = [e for e in errors if other not in e["loc"]] or errors
        err = errors[0]
        loc = [str(p) for p in err["loc"] if str(p) != branch]
        field = ".".join(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not field and ": " in msg and msg.split(": ", 1)[0].isidentifier():
            field, msg = msg.split(": ", 1)  # a model check names its field first
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        match = data.get("match")
        what = f" ({match})" if isinstance(match, str) else ""
        raise WaiversError(f"{where}{what}: field '{field or 'match'}': {msg}{more}") from None


def load_waivers(
    path: Path, today: dt.date, *, label: str | None = None,
    targets: Sequence[str] | None = None,
) -> WaiverSet:
    text = read_text(path, "waivers file", WaiversError)
    found = parse_waivers(text, str(path), today, label=label, targets=targets)
    return WaiverSet(found.waivers, (path,))


def find_waivers_file(
    option: str | None, ini: str | None, targets_file: Path | None, rootdir: Path
) -> Path | None:
    """``--azl-waivers``, else the ini option, else ``azl-waivers.yaml`` beside the targets
    file (or in the rootdir). A file named by an option must exist."""
    named = Path(option) if option else None
    if named is None and ini:
        named = Path(ini) if Path(ini).is_absolute() else rootdir / ini
    if named is not None:
        if not named.is_file():
            how = "--azl-waivers" if option else "ini azl_waivers_file"
            raise WaiversError(f"{how}: {named}: no such file")
        return named
    beside = (targets_file.parent if targets_file is not None else rootdir) / DEFAULT_FILE
    return beside if beside.is_file() else None
