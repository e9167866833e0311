"""One side of ``azl report diff``: an ``ImageRecord`` from what the user named.

A side is a run's report directory (its ``*.image.json``), one such file, a run's per-image
JUnit file (the image file beside it), or a recorded image: an AgentBaker release-notes file
(``recorded/release_notes.py``). Anything else is a ``ReportError`` naming the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import AzlError, ReportError
from .image_diff import ImageDiff, ImageRecord, Installed, diff_images
from .image_file import SUFFIX, ImageFile, image_path, read_image_file


def load_side(path: Path, image: str | None = None, host: str | None = None) -> ImageRecord:
    """The image at ``path``; ``image`` picks one of a run's images, ``host`` one of its
    hosts where they differ."""
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory")
    if path.is_dir():
        return pick(run_images(path), path, image, host)
    if path.name.endswith(SUFFIX):
        found = read_image_file(path)
        return pick({found.image: found}, path, image, host)
    if path.suffix == ".xml":
        beside = image_path(path)
        if not beside.is_file():
            raise ReportError(f"{path}: no image record beside this report ({beside.name}): "
                              "the run did not record its image facts")
        found = read_image_file(beside)
        return pick({found.image: found}, path, image, host)
    return _recorded(path)


def run_images(directory: Path) -> dict[str, ImageFile]:
    """The image records of a run's report directory, by image."""
    files = sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file())
    if not files:
        if any(directory.glob("*.xml")):
            raise ReportError(f"{directory}: a report directory without image records "
                              f"(*{SUFFIX}): the run did not record its image facts")
        raise ReportError(f"{directory}: neither a report directory with image records "
                          f"(*{SUFFIX}) nor a recorded image file")
    out: dict[str, ImageFile] = {}
    for file in files:
        found = read_image_file(file)
        out[found.image] = found
    return out


def pick(images: Mapping[str, ImageFile], path: Path, image: str | None,
         host: str | None) -> ImageRecord:
    """One image's record: the only one, or the one ``image`` names; its hosts must agree
    unless ``host`` names one."""
    if image is not None:
        if image not in images:
            raise ReportError(f"{path}: no image {image!r} here (images: "
                              f"{', '.join(sorted(images))})")
        chosen = images[image]
    elif len(images) == 1:
        chosen = next(iter(images.values()))
    else:
        raise ReportError(f"{path}: {len(images)} images ({', '.join(sorted(images))}): "
                          "pick one with --image")
    hosts = chosen.hosts
    if host is not None:
        if host not in hosts:
            raise ReportError(f"{path}: image {chosen.image} has no host {host!r} (hosts: "
                              f"{', '.join(sorted(hosts)) or 'none'})")
        return hosts[host]
    if not hosts:
        raise ReportError(f"{chosen.path}: image {chosen.image} records no host")
    records = list(hosts.values())
    first = records[0]
    differ = [name for name, r in hosts.items() if replace(r, label=first.label) != first]
    if differ:
        raise ReportError(f"{path}: the hosts of image {chosen.image} differ "
                          f"({', '.join(sorted(hosts))}): pick one with --host")
    if len(records) == 1:
        return first
    return replace(first, label=f"{chosen.path.parent}: {chosen.image} on {len(records)} "
                                "hosts (all alike)")


def run_record(sources: Sequence[Path]) -> ImageRecord | None:
    """The image record beside a run's report of one image (the first of ``sources`` that
    has one), None without one. Hosts that differ: the first by name, and the label says
    so (``azl report diff --host`` compares any other)."""
    for source in sources:
        beside = image_path(source)
        if not beside.is_file():
            continue
        found = read_image_file(beside)
        if not found.hosts:
            return None
        try:
            return pick({found.image: found}, source, found.image, None)
        except ReportError:  # the hosts differ
            name = min(found.hosts)
            record = found.hosts[name]
            return replace(record, label=f"{record.label} (the first of "
                                         f"{len(found.hosts)} hosts, whose images differ)")
    return None


def image_changes(base: Sequence[Path], current: Sequence[Path]) -> tuple[ImageDiff | None, str]:
    """What changed in the image between two runs' reports of it: the diff when both runs
    recorded their image and it changed; else None, and a line saying why nothing is shown
    where a record is unreadable or the packages could not be compared (a missing record
    says nothing: older runs did not write one)."""
    try:
        old, new = run_record(base), run_record(current)
    except ReportError as exc:
        return None, f"image changes not shown: {exc}"
    if old is None or new is None:
        return None, ""
    diff = diff_images(old, new)
    if diff.changed:
        return diff, ""
    if diff.packages_unknown:  # the same facts; whether the packages changed is not known
        return None, f"image facts unchanged; packages not compared: {diff.packages_unknown}"
    return None, ""


def _recorded(path: Path) -> ImageRecord:
    from ..recorded.release_notes import load

    try:
        found = load(path)
    except AzlError as exc:
        raise ReportError(f"{path}: neither a report directory with image records nor a "
                          f"recorded image file ({exc})") from None
    packages: dict[str, tuple[Installed, ...]] | None = None
    note = ""
    if found.package_entries is None:
        note = "the recording does not list its packages"
    else:
        grouped: dict[str, list[Installed]] = {}
        for pkg in found.package_entries:
            grouped.setdefault(pkg.name, []).append(Installed(pkg.evr, pkg.arch))
        packages = {name: tuple(sorted(v)) for name, v in grouped.items()}
    return ImageRecord(
        label=str(path), os_release=dict(found.os_release), kernel=found.kernel_release or "",
        arch=found.arch or "", node_image_version=found.node_image_version,
        packages=packages, packages_note=note, packages_source="release notes",
    )
