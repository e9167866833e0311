"""What changed between two images: packages, kernel, os-release, node image version.

Pure: an ``ImageRecord`` holds what is known of one image (from a run's ``*.image.json``,
or from a recorded image such as an AgentBaker release-notes file: ``image_source.py``
builds them), ``diff_images`` compares two, and the renderers turn the result into plain
text (the terminal), Markdown (``azl report compare``) or the rows the HTML page shows.

Versions are ordered as rpm orders them, epoch first (``compare_evr``): ``1:1.0`` is newer
than ``2.0``, ``1.0~rc1`` older than ``1.0``. A package installed in several versions at once
(``kernel`` keeps the previous one) is compared version by version: the versions that went
are *removed*, those that came are *added*, each naming the package; one installed for
several arches (multilib) is compared per arch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..packages.versions import compare_evr

ChangeKind = Literal["added", "removed", "upgraded", "downgraded", "rebuilt"]
KINDS: tuple[ChangeKind, ...] = ("upgraded", "downgraded", "added", "removed", "rebuilt")


@dataclass(frozen=True, order=True)
class Installed:
    """One installed version of a package: ``[epoch:]version-release`` and the arch."""

    evr: str
    arch: str = ""

    def text(self) -> str:
        return f"{self.evr} ({self.arch})" if self.arch else self.evr


@dataclass(frozen=True)
class ImageRecord:
    """What is known of one image: its identity and, when it was read, every package.

    ``packages`` maps a name to its installed versions (usually one); ``None`` when the
    package list was not recorded, and ``packages_note`` says why (a host whose inventory
    could not be read, a recording that lacks it).
    """

    label: str  # where it came from, as the user named it: a file, or a run's image / host
    os_release: Mapping[str, str] = field(default_factory=dict)
    kernel: str = ""  # the running kernel's release (uname -r)
    arch: str = ""
    node_image_version: str | None = None
    packages: Mapping[str, tuple[Installed, ...]] | None = None
    packages_note: str = ""
    packages_source: str = ""  # rpm, dpkg, spdx, release notes

    @property
    def package_count(self) -> int:
        return 0 if self.packages is None else sum(len(v) for v in self.packages.values())


@dataclass(frozen=True)
class PackageChange:
    """One package's change; ``old``/``new`` empty when it was added/removed. ``stays``:
    the versions of the package present on both sides (a kernel kept beside the new one)."""

    name: str
    kind: ChangeKind
    old: Installed | None
    new: Installed | None
    stays: tuple[Installed, ...] = ()

    def describe(self) -> str:
        if self.kind == "added":
            text = f"{self.name} {self.new.text() if self.new else ''}"
        elif self.kind == "removed":
            text = f"{self.name} {self.old.text() if self.old else ''}"
        else:
            assert self.old is not None and self.new is not None
            old, new = self.old, self.new
            if old.arch == new.arch:
                text = f"{self.name} {old.evr} -> {new.evr}" + (f" ({new.arch})" if new.arch
                                                                 else "")
            else:
                text = f"{self.name} {old.text()} -> {new.text()}"
        if self.stays:
            text += f" ({', '.join(i.evr for i in self.stays)} stays)"
        return text


@dataclass(frozen=True)
class ValueChange:
    key: str
    old: str | None
    new: str | None


@dataclass
class ImageDiff:
    old: ImageRecord
    new: ImageRecord
    node_image_version: ValueChange | None = None
    kernel: ValueChange | None = None
    arch: ValueChange | None = None
    os_release: list[ValueChange] = field(default_factory=list)
    packages: list[PackageChange] = field(default_factory=list)
    # Why packages were not compared (a side without a package list), else "".
    packages_unknown: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.node_image_version or self.kernel or self.arch or self.os_release
                    or self.packages)

    def of_kind(self, kind: ChangeKind) -> list[PackageChange]:
        return [c for c in self.packages if c.kind == kind]

    def counts(self) -> dict[ChangeKind, int]:
        out: dict[ChangeKind, int] = dict.fromkeys(KINDS, 0)
        for change in self.packages:
            out[change.kind] += 1
        return out


def diff_images(old: ImageRecord, new: ImageRecord) -> ImageDiff:
    """Everything that differs between ``old`` and ``new``, in a stable order."""
    out = ImageDiff(old, new)
    out.node_image_version = _value("node image version", old.node_image_version,
                                    new.node_image_version)
    out.kernel = _value("kernel", old.kernel, new.kernel)
    out.arch = _value("arch", old.arch, new.arch)
    for key in sorted(set(old.os_release) | set(new.os_release)):
        change = _value(key, old.os_release.get(key), new.os_release.get(key))
        if change is not None:
            out.os_release.append(change)
    if old.packages is None or new.packages is None:
        missing = [(side, r) for side, r in (("old", old), ("new", new)) if r.packages is None]
        out.packages_unknown = "; ".join(
            f"{side} ({r.label}): {r.packages_note or 'no package list recorded'}"
            for side, r in missing)
    else:
        out.packages = diff_packages(old.packages, new.packages)
    return out


def _value(key: str, old: str | None, new: str | None) -> ValueChange | None:
    return None if (old or None) == (new or None) else ValueChange(key, old or None, new or None)


def diff_packages(old: Mapping[str, Sequence[Installed]],
                  new: Mapping[str, Sequence[Installed]]) -> list[PackageChange]:
    """Per package name (sorted), what changed between two package lists."""
    out: list[PackageChange] = []
    for name in sorted(set(old) | set(new)):
        out.extend(_package(name, tuple(old.get(name, ())), tuple(new.get(name, ()))))
    return out


def _package(name: str, old: tuple[Installed, ...],
             new: tuple[Installed, ...]) -> Iterable[PackageChange]:
    if set(old) == set(new):
        return []
    if len(old) == 1 and len(new) == 1:
        return [_one(name, old[0], new[0])]
    # Several at once: per arch (multilib: glibc.x86_64 and glibc.i686 each upgraded), and
    # within an arch as sets (a kernel kept beside the new one).
    out: list[PackageChange] = []
    for arch in sorted({i.arch for i in old} | {i.arch for i in new}):
        was = {i for i in old if i.arch == arch}
        now = {i for i in new if i.arch == arch}
        stays = tuple(sorted(was & now, key=_order))
        gone = sorted(was - now, key=_order)
        came = sorted(now - was, key=_order)
        if not stays and len(gone) == 1 and len(came) == 1:
            out.append(_one(name, gone[0], came[0]))
            continue
        out += [PackageChange(name, "removed", i, None, stays) for i in gone]
        out += [PackageChange(name, "added", None, i, stays) for i in came]
    return out


def _order(item: Installed) -> tuple[EvrKey, str]:
    return EvrKey(item.evr), item.arch


@dataclass(frozen=True)
class EvrKey:
    """Sorts EVR strings as rpm orders them."""

    evr: str

    def __lt__(self, other: EvrKey) -> bool:
        order = compare_evr(self.evr, other.evr)
        return order < 0 if order else self.evr < other.evr  # equal: the text decides


def _one(name: str, old: Installed, new: Installed) -> PackageChange:
    order = compare_evr(old.evr, new.evr)
    kind: ChangeKind = "upgraded" if order < 0 else "downgraded" if order > 0 else "rebuilt"
    return PackageChange(name, kind, old, new)


# -- rendering ---------------------------------------------------------------------------------

def identity(record: ImageRecord) -> str:
    """One line: the image's node image version, os-release version, kernel and arch."""
    osr = record.os_release
    name = " ".join(x for x in (osr.get("ID", ""), osr.get("VERSION") or osr.get("VERSION_ID", ""),
                                osr.get("VARIANT_ID", "")) if x)
    parts = [p for p in (record.node_image_version, name or None,
                         f"kernel {record.kernel}" if record.kernel else None,
                         record.arch or None) if p]
    if record.packages is not None:
        parts.append(f"{record.package_count} packages"
                     + (f" ({record.packages_source})" if record.packages_source else ""))
    return ", ".join(parts)


def summary_line(diff: ImageDiff) -> str:
    """``packages: 12 upgraded, 1 removed`` and what else changed, on one line."""
    if diff.packages_unknown:
        packages = "packages not compared"
    else:
        counts = diff.counts()
        listed = [f"{n} {kind}" for kind, n in counts.items() if n]
        packages = "packages: " + (", ".join(listed) if listed else "unchanged")
    others = [c.key for c in (diff.node_image_version, diff.kernel, diff.arch) if c]
    if diff.os_release:
        others.append("os-release")
    return packages + ("; changed: " + ", ".join(others) if others else "")


def render_text(diff: ImageDiff) -> str:
    """Plain text for a terminal: both sides, what changed, every package change."""
    lines = [f"old: {diff.old.label}", f"     {identity(diff.old)}",
             f"new: {diff.new.label}", f"     {identity(diff.new)}", ""]
    if not diff.changed and not diff.packages_unknown:
        lines.append("no difference: same packages, kernel, os-release and node image version")
        return "\n".join(lines) + "\n"
    for change in (diff.node_image_version, diff.kernel, diff.arch):
        if change is not None:
            lines.append(f"{change.key}: {change.old or '(none)'} -> {change.new or '(none)'}")
    for change in diff.os_release:
        lines.append(f"os-release {change.key}: {_shown(change.old)} -> {_shown(change.new)}")
    if diff.packages_unknown:
        lines.append(f"packages: not compared: {diff.packages_unknown}")
    else:
        lines.append(summary_line(diff).split(";")[0])
        for kind in KINDS:
            lines += [f"  {kind:<10} {p.describe()}" for p in diff.of_kind(kind)]
    return "\n".join(lines) + "\n"


def _shown(value: str | None) -> str:
    return "(absent)" if value is None else repr(value)


def fact_rows(diff: ImageDiff) -> list[tuple[str, str, str]]:
    """(what, before, now) of the image's identity that changed."""
    facts = [c for c in (diff.node_image_version, diff.kernel, diff.arch) if c]
    facts += [ValueChange(f"os-release {c.key}", c.old, c.new) for c in diff.os_release]
    return [(c.key, c.old or "(none)", c.new or "(none)") for c in facts]


def package_rows(diff: ImageDiff) -> list[tuple[str, str, str, str]]:
    """(package, change, before, now) per package change, upgrades first."""
    rows: list[tuple[str, str, str, str]] = []
    for kind in KINDS:
        for c in diff.of_kind(kind):
            stays = f" ({', '.join(i.evr for i in c.stays)} stays)" if c.stays else ""
            rows.append((c.name, c.kind, c.old.text() if c.old else "",
                         ((c.new.text() if c.new else "") + stays).strip()))
    return rows


def render_markdown(diff: ImageDiff, title: str = "Image changes", level: int = 4,
                    max_rows: int = 200) -> list[str]:
    """A Markdown section (lines): what changed, a row per package change."""
    from .compare import md_cell

    head = "#" * level
    lines = [f"{head} {title}", "",
             f"`{md_cell(diff.old.label)}` → `{md_cell(diff.new.label)}`: "
             f"{md_cell(summary_line(diff), 400)}", ""]
    facts = fact_rows(diff)
    if facts:
        lines += ["| what | before | now |", "|---|---|---|"]
        lines += [f"| {md_cell(k)} | {md_cell(a)} | {md_cell(b)} |" for k, a, b in facts]
        lines.append("")
    if diff.packages_unknown:
        lines += [f"Packages not compared: {md_cell(diff.packages_unknown, 400)}", ""]
    elif diff.packages:
        rows = package_rows(diff)
        lines += ["| package | change | before | now |", "|---|---|---|---|"]
        lines += [f"| {md_cell(n)} | {k} | {md_cell(a)} | {md_cell(b)} |"
                  for n, k, a, b in rows[:max_rows]]
        if len(rows) > max_rows:
            lines.append(f"| … {len(rows) - max_rows} more | | | |")
        lines.append("")
    return lines


def to_dict(diff: ImageDiff) -> dict[str, object]:
    """The diff for machines (``--json``): both sides' identity and every change."""

    def side(r: ImageRecord) -> dict[str, object]:
        return {"label": r.label, "node_image_version": r.node_image_version,
                "kernel": r.kernel, "arch": r.arch, "os_release": dict(r.os_release),
                "packages": None if r.packages is None else r.package_count,
                "packages_source": r.packages_source, "packages_note": r.packages_note}

    def value(c: ValueChange | None) -> dict[str, str | None] | None:
        return None if c is None else {"old": c.old, "new": c.new}

    def installed(i: Installed | None) -> dict[str, str] | None:
        return None if i is None else {"evr": i.evr, "arch": i.arch}

    return {
        "old": side(diff.old), "new": side(diff.new), "changed": diff.changed,
        "node_image_version": value(diff.node_image_version), "kernel": value(diff.kernel),
        "arch": value(diff.arch),
        "os_release": {c.key: value(c) for c in diff.os_release},
        "packages_compared": not diff.packages_unknown,
        "packages_unknown": diff.packages_unknown or None,
        "counts": diff.counts(),
        "packages": [{"name": c.name, "change": c.kind, "old": installed(c.old),
                      "new": installed(c.new), "stays": [installed(i) for i in c.stays]}
                     for c in diff.packages],
    }
